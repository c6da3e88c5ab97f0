package dev.stasis.criu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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
  // images/magic.h: IMG_COMMON_MAGIC, then PSTREE_MAGIC
  private static final int IMG_COMMON_MAGIC = 0x54564319;
  private static final int PSTREE_MAGIC = 0x50273030;

  /** One dumped process: {@code pid} and {@code ppid} in the tree's PID namespace. */
  public record Entry(long pid, long ppid) {}

  private Pstree() {}

  public static List<Entry> read(Path imagesDir) throws IOException {
    return parse(Files.readAllBytes(imagesDir.resolve(FILE_NAME)));
  }

  /** Entries are length-prefixed {@code pstree_entry} messages (images/pstree.proto). */
  static List<Entry> parse(byte[] image) throws IOException {
    try {
      ByteBuffer buf = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
      if (buf.getInt() != IMG_COMMON_MAGIC || buf.getInt() != PSTREE_MAGIC) {
        throw new IOException("not a pstree image");
      }
      List<Entry> entries = new ArrayList<>();
      while (buf.remaining() >= 4) {
        int length = buf.getInt();
        if (length < 0 || length > buf.remaining()) {
          throw new IOException("pstree entry length " + length + " exceeds the file");
        }
        entries.add(entry(new ProtobufReader(buf.slice().limit(length))));
        buf.position(buf.position() + length);
      }
      if (entries.isEmpty()) {
        throw new IOException("pstree image holds no process");
      }
      return entries;
    } catch (RuntimeException e) {
      throw new IOException("pstree image is malformed: " + e.getMessage(), e);
    }
  }

  private static Entry entry(ProtobufReader m) {
    long pid = -1;
    long ppid = -1;
    while (m.hasMore()) {
      int tag = m.readTag();
      int field = ProtobufReader.fieldNumber(tag);
      if (ProtobufReader.wireType(tag) == 0 && field == 1) {
        pid = m.readVarint();
      } else if (ProtobufReader.wireType(tag) == 0 && field == 2) {
        ppid = m.readVarint();
      } else {
        m.skip(tag);
      }
    }
    if (pid <= 0) {
      throw new IllegalStateException("pstree entry without a pid");
    }
    return new Entry(pid, ppid);
  }
}
