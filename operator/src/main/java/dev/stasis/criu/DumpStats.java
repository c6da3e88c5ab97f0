package dev.stasis.criu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * CRIU's own dump statistics, read from the {@code stats-dump} image it writes. Times are in microseconds, as CRIU measures them.
 */
public record DumpStats(
    long freezingTimeMicros,
    long frozenTimeMicros,
    long memoryDumpTimeMicros,
    long memoryWriteTimeMicros,
    long pagesScanned,
    long pagesWritten) {

  public static final String FILE_NAME = "stats-dump";

  // images/magic.h: service images start with IMG_SERVICE_MAGIC, then the image's own magic.
  private static final int IMG_COMMON_MAGIC = 0x54564319;
  private static final int IMG_SERVICE_MAGIC = 0x55105940;

  /** CRIU writes its statistics into the work directory when one is given, else beside the images. */
  public static DumpStats read(Path workDir, Path imagesDir) throws IOException {
    Path file = Files.exists(workDir.resolve(FILE_NAME)) ? workDir.resolve(FILE_NAME) : imagesDir.resolve(FILE_NAME);
    return parse(Files.readAllBytes(file));
  }

  /**
   * The file holds one length-prefixed protobuf {@code stats_entry}; field 1 is the
   * {@code dump_stats_entry} (images/stats.proto).
   */
  public static DumpStats parse(byte[] image) throws IOException {
    try {
      ByteBuffer buf = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
      int magic = buf.getInt();
      if (magic == IMG_SERVICE_MAGIC || magic == IMG_COMMON_MAGIC) {
        buf.getInt();
      }
      int length = buf.getInt();
      if (length < 0 || length > buf.remaining()) {
        throw new IOException("stats image entry length " + length + " exceeds the file");
      }
      ProtobufReader entry = new ProtobufReader(buf.slice().limit(length));
      while (entry.hasMore()) {
        int tag = entry.readTag();
        if (ProtobufReader.fieldNumber(tag) == 1 && ProtobufReader.wireType(tag) == 2) {
          return fromDumpEntry(entry.readMessage());
        }
        entry.skip(tag);
      }
      throw new IOException("stats image has no dump statistics");
    } catch (RuntimeException e) {
      throw new IOException("stats image is malformed: " + e.getMessage(), e);
    }
  }

  private static DumpStats fromDumpEntry(ProtobufReader m) {
    long[] v = new long[16];
    while (m.hasMore()) {
      int tag = m.readTag();
      int field = ProtobufReader.fieldNumber(tag);
      if (ProtobufReader.wireType(tag) == 0 && field < v.length) {
        v[field] = m.readVarint();
      } else {
        m.skip(tag);
      }
    }
    // freezing_time=1 frozen_time=2 memdump_time=3 memwrite_time=4 pages_scanned=5 pages_written=7
    return new DumpStats(v[1], v[2], v[3], v[4], v[5], v[7]);
  }
}
