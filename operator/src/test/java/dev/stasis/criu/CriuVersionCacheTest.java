package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each job checks CRIU's version; CRIU is asked only when its executable changed. */
class CriuVersionCacheTest {
  @TempDir Path dir;

  @Test
  void asksCriuOnceWhileTheExecutableStaysTheSame() throws Exception {
    Path calls = dir.resolve("calls");
    Path criu = fakeCriu(calls, "4.2.1");
    Criu c = new Criu(criu, Map.of());
    for (int i = 0; i < 20; i++) {
      assertThat(c.version()).contains(new CriuVersion(4, 2, 1));
    }
    assertThat(Files.readAllLines(calls)).hasSize(1);
  }

  @Test
  void asksAgainOnceTheExecutableWasReplaced() throws Exception {
    Path calls = dir.resolve("calls");
    Path criu = fakeCriu(calls, "4.2.1");
    Criu c = new Criu(criu, Map.of());
    assertThat(c.version()).contains(new CriuVersion(4, 2, 1));
    Path replacement = fakeCriu(calls, "3.17.1", dir.resolve("new-criu"));
    Files.move(replacement, criu, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    assertThat(c.version()).contains(new CriuVersion(3, 17, 1));
    Files.delete(criu);
    assertThat(c.version()).isEmpty();
  }

  private Path fakeCriu(Path calls, String version) throws Exception {
    return fakeCriu(calls, version, dir.resolve("criu"));
  }

  private static Path fakeCriu(Path calls, String version, Path at) throws Exception {
    Files.writeString(at, "#!/bin/sh\necho called >> '" + calls + "'\necho 'Version: " + version + "'\n");
    Files.setPosixFilePermissions(at, PosixFilePermissions.fromString("rwx------"));
    return at;
  }
}
