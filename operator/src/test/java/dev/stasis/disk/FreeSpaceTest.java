package dev.stasis.disk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.assertj.core.data.Offset;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FreeSpaceTest {
  @TempDir Path dir;

  /** statvfs of procfs says 0 bytes, and /proc/self/status is no folder: unknown, which a failed dump takes as plenty. */
  @Test
  void aPlaceWhoseRoomCannotBeAskedIsUnknownAndCountsAsPlentyOnlyWhenAskedSo() {
    Path nowhere = Path.of("/proc/self/status/x");
    assertThatThrownBy(() -> FreeSpace.usableBytes(nowhere)).isInstanceOf(NoSuchFileException.class);
    assertThat(FreeSpace.usableBytesOrPlenty(nowhere)).isEqualTo(Long.MAX_VALUE);
  }

  @Test
  void freeSpaceOfAFolderThatDoesNotExistYetIsItsParentsFilesystems() throws Exception {
    // Others write to this disk meanwhile: the same filesystem, give or take 256 MiB.
    assertThat(FreeSpace.usableBytes(dir.resolve("a/b/c"))).isPositive()
        .isCloseTo(dir.toFile().getUsableSpace(), Offset.offset(256L << 20));
  }

  /**
   * The agent pod reaches the node's runtime folders under /proc/<pid>/root: the free space must be
   * that of the filesystem the other mount namespace has there, not of the pod's own.
   */
  @Test
  void freeSpaceUnderAnotherMountNamespacesRootIsThatNamespacesFilesystem() throws Exception {
    Path mountPoint = Files.createDirectory(dir.resolve("runtime-store"));
    Process holder = new ProcessBuilder("unshare", "--mount", "--propagation", "private", "sh", "-c",
        "mount -t tmpfs -o size=7m tmpfs " + mountPoint + " && mkdir " + mountPoint + "/root && echo ready && exec sleep 600")
        .redirectErrorStream(true).start();
    try {
      var ready = new String(holder.getInputStream().readNBytes(6));
      assertThat(ready).isEqualTo("ready\n");
      Path seenFromHere = Path.of("/proc/" + holder.pid() + "/root").resolve(mountPoint.toString().substring(1)).resolve("root");

      long free = FreeSpace.usableBytes(seenFromHere.resolve("io.containerd.content.v1.content"));

      assertThat(free).isBetween(6L << 20, 7L << 20);
      assertThat(mountPoint.toFile().getUsableSpace()).as("this namespace's filesystem there").isGreaterThan(7L << 20);
    } finally {
      holder.destroyForcibly();
      await().atMost(Duration.ofSeconds(10)).until(() -> holder.waitFor(1, TimeUnit.SECONDS));
    }
  }
}
