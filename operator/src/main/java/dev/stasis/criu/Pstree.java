package dev.stasis.criu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The process tree a dump holds, as CRIU wrote it ({@code pstree.img}): one entry per process,
 * with its PID as seen in the tree's own PID namespace (1 for a namespace's init) and its parent's.
 */
public final class Pstree {
  public static final String FILE_NAME = "pstree.img";

  /** One dumped process: {@code pid} and {@code ppid} in the tree's PID namespace. */
  public record Entry(long pid, long ppid) {}

  private Pstree() {}

  public static List<Entry> read(Path imagesDir) throws IOException {
    return parse(Files.readAllBytes(imagesDir.resolve(FILE_NAME)));
  }

  /** Entries are length-prefixed {@code pstree_entry} messages (images/pstree.proto: pid = 1, ppid = 2). */
  static List<Entry> parse(byte[] image) throws IOException {
    List<Entry> entries = new ArrayList<>();
    for (ProtobufMessage m : ImageFile.parse(image, ImageFile.PSTREE_MAGIC, "pstree")) {
      long pid = m.number(1, -1);
      if (pid <= 0) {
        throw new IOException("pstree image is malformed: an entry without a pid");
      }
      entries.add(new Entry(pid, m.number(2, -1)));
    }
    if (entries.isEmpty()) {
      throw new IOException("pstree image holds no process");
    }
    return entries;
  }
}
