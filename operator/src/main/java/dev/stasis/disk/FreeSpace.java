package dev.stasis.disk;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The room left on the filesystem of a folder, for the agent's work folders and CRIU's images.
 * Asked with statvfs on the path itself, not through {@code Files.getFileStore}: that resolves the
 * real path first, and under {@code /proc/<pid>/root} (the host as the agent pod sees it) the real
 * path leads back into the pod's own filesystem.
 */
public final class FreeSpace {
  private FreeSpace() {}

  /**
   * The bytes free for this process where {@code dir} is, or would be once created (its nearest
   * existing folder's filesystem).
   *
   * @throws IOException when no folder there can be asked
   */
  public static long usableBytes(Path dir) throws IOException {
    Path existing = dir.toAbsolutePath();
    while (existing.getParent() != null && !Files.exists(existing)) {
      existing = existing.getParent();
    }
    long usable = existing.toFile().getUsableSpace();
    if (usable == 0 && !Files.isDirectory(existing)) { // getUsableSpace says 0 when statvfs fails
      throw new NoSuchFileException(existing.toString(), null, "not a folder whose free space can be asked");
    }
    return usable;
  }

  /** As {@link #usableBytes}, but unknown counts as plenty: for judging a failure, never for refusing work. */
  public static long usableBytesOrPlenty(Path dir) {
    try {
      return usableBytes(dir);
    } catch (IOException e) {
      return Long.MAX_VALUE;
    }
  }
}
