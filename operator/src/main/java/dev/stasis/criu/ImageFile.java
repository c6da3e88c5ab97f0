package dev.stasis.criu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A CRIU protobuf image (criu/include/magic.h, images/*.proto): a common or service magic, the
 * image's own magic, then length-prefixed messages. Read whole: these images are small (the memory
 * pages are raw images, never read through this).
 */
final class ImageFile {
  static final int IMG_COMMON_MAGIC = 0x54564319;
  static final int IMG_SERVICE_MAGIC = 0x55105940;
  static final int INVENTORY_MAGIC = 0x58313116;
  static final int PSTREE_MAGIC = 0x50273030;
  static final int CORE_MAGIC = 0x55053847;
  static final int IDS_MAGIC = 0x54432030;
  static final int FS_MAGIC = 0x51403912;
  static final int FDINFO_MAGIC = 0x56213732;
  static final int FILES_MAGIC = 0x56303138;
  static final int MM_MAGIC = 0x57492820;
  static final int PAGEMAP_MAGIC = 0x56084025;
  // Far above any image of metadata; a larger one is not what CRIU wrote.
  private static final long MAX_BYTES = 256L << 20;

  private ImageFile() {}

  /** The messages of {@code file}, which must carry {@code magic}; empty when the file does not exist. */
  static List<ProtobufMessage> read(Path file, int magic) throws IOException {
    if (!Files.exists(file)) {
      return List.of();
    }
    if (Files.size(file) > MAX_BYTES) {
      throw new IOException(file.getFileName() + " is " + Files.size(file) + " bytes: too large for a CRIU image of"
          + " metadata");
    }
    return parse(Files.readAllBytes(file), magic, file.getFileName().toString());
  }

  /** @param name the image's name, for what goes wrong */
  static List<ProtobufMessage> parse(byte[] image, int magic, String name) throws IOException {
    try {
      ByteBuffer buf = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
      int first = buf.getInt();
      if ((first != IMG_COMMON_MAGIC && first != IMG_SERVICE_MAGIC) || buf.getInt() != magic) {
        throw new IOException("not a " + name + " image: it does not start with the magic CRIU gives one");
      }
      List<ProtobufMessage> messages = new ArrayList<>();
      while (buf.hasRemaining()) {
        int length = buf.getInt();
        if (length < 0 || length > buf.remaining()) {
          throw new IOException(name + ": entry length " + length + " exceeds the file");
        }
        messages.add(new ProtobufMessage(buf.slice().limit(length)));
        buf.position(buf.position() + length);
      }
      return messages;
    } catch (RuntimeException e) {
      throw new IOException(name + " is malformed: " + e, e);
    }
  }
}
