package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A dump runs ahead of the node's other work (the agent runs as root, as on a node). The CRIU here
 * is a script that writes down its own nice value.
 */
class CriuPriorityTest {
  @TempDir Path dir;

  @Test
  void aDumpRunsAtARaisedPriority() throws Exception {
    Path niceOfDump = dir.resolve("dump-nice");
    Criu criu = new Criu(criuWritingItsNiceTo(niceOfDump), Map.of());

    criu.dump(new DumpOptions(4242, dir.resolve("images"), dir.resolve("dump"), false, false, TreeOptions.PLAIN,
        Duration.ofSeconds(30)));

    assertThat(Integer.parseInt(Files.readString(niceOfDump).trim())).isEqualTo(Criu.DUMP_NICE);
  }

  private Path criuWritingItsNiceTo(Path file) throws Exception {
    Path script = dir.resolve("criu");
    // Field 19 of /proc/<pid>/stat is the nice value; the script's (sh) has no space in its name.
    Files.writeString(script, "#!/bin/sh\nawk '{print $19}' /proc/$$/stat > '" + file + "'\n");
    Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwx------"));
    return script;
  }
}
