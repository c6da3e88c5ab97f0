package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A dump that filled its work folder fails WorkDirFull, even when the folder was too full to log why. */
class RunningDumpOutOfSpaceTest {
  @TempDir Path dir;

  @Test
  void aFullFolderIsNamedEvenWhenTheLogLostTheLineThatSaysSo() throws Exception {
    CriuLog cut = log("(00.2) Error (criu/page-xfer.c:280): Unable to write page data\n");
    assertThat(RunningDump.ranOutOfSpace(cut, 4096)).isTrue();
    assertThat(RunningDump.ranOutOfSpace(cut, 8L << 30)).as("another failure, with room left").isFalse();
  }

  @Test
  void theLogSayingSoIsEnough() throws Exception {
    CriuLog said = log("(00.2) Error (criu/image.c:40): Can't write: No space left on device\n");
    assertThat(RunningDump.ranOutOfSpace(said, 8L << 30)).isTrue();
  }

  private CriuLog log(String text) throws Exception {
    return new CriuLog(Files.writeString(dir.resolve("dump.log"), text));
  }
}
