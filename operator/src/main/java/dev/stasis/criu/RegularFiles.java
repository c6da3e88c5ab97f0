package dev.stasis.criu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The regular files (and directories) a dump recorded, read from CRIU's {@code files.img}: every
 * path CRIU will reopen at restore, with the size it will insist on when it recorded one. These are
 * exactly the files whose absence or change fails {@code criu restore}, seen at the instant the
 * tree was frozen.
 */
public final class RegularFiles {
  public static final String FILE_NAME = "files.img";

  // images/magic.h
  private static final int IMG_COMMON_MAGIC = 0x54564319;
  private static final int FILES_MAGIC = 0x56303138;
  // images/fdinfo.proto: file_entry {type = 1, reg = 3}, fd_types REG = 1
  private static final int FD_TYPE_REG = 1;

  /** One reg_file_entry (images/regfile.proto): its path, and its size when CRIU checks it. */
  public record RegularFile(String path, Long size) {}

  private RegularFiles() {}

  /** Empty when the dump has no files.img (nothing was open); fails on a malformed one. */
  public static List<RegularFile> read(Path imagesDir) throws IOException {
    Path file = imagesDir.resolve(FILE_NAME);
    return Files.exists(file) ? parse(Files.readAllBytes(file)) : List.of();
  }

  static List<RegularFile> parse(byte[] image) throws IOException {
    List<RegularFile> files = new ArrayList<>();
    try {
      ByteBuffer buf = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
      if (buf.getInt() != IMG_COMMON_MAGIC || buf.getInt() != FILES_MAGIC) {
        throw new IOException(FILE_NAME + " does not start with CRIU's files image magic");
      }
      while (buf.hasRemaining()) {
        int length = buf.getInt();
        if (length < 0 || length > buf.remaining()) {
          throw new IOException(FILE_NAME + " entry length " + length + " exceeds the file");
        }
        ProtobufReader entry = new ProtobufReader(buf.slice().limit(length));
        buf.position(buf.position() + length);
        RegularFile file = regularFile(entry);
        if (file != null) {
          files.add(file);
        }
      }
    } catch (RuntimeException e) {
      throw new IOException(FILE_NAME + " is malformed: " + e.getMessage(), e);
    }
    return files;
  }

  private static RegularFile regularFile(ProtobufReader entry) {
    long type = -1;
    ProtobufReader reg = null;
    while (entry.hasMore()) {
      int tag = entry.readTag();
      int field = ProtobufReader.fieldNumber(tag);
      if (field == 1 && ProtobufReader.wireType(tag) == 0) {
        type = entry.readVarint();
      } else if (field == 3 && ProtobufReader.wireType(tag) == 2) {
        reg = entry.readMessage();
      } else {
        entry.skip(tag);
      }
    }
    if (type != FD_TYPE_REG || reg == null) {
      return null;
    }
    String name = null;
    Long size = null;
    while (reg.hasMore()) {
      int tag = reg.readTag();
      int field = ProtobufReader.fieldNumber(tag);
      if (field == 6 && ProtobufReader.wireType(tag) == 2) {
        name = new String(reg.readBytes(), StandardCharsets.UTF_8);
      } else if (field == 8 && ProtobufReader.wireType(tag) == 0) {
        size = reg.readVarint();
      } else {
        reg.skip(tag);
      }
    }
    if (name == null) {
      return null;
    }
    // CRIU keeps names as the process saw them; some versions drop the leading slash.
    return new RegularFile(name.startsWith("/") ? name : "/" + name, size);
  }
}
