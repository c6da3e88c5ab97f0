package dev.stasis.criu;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The regular files (and directories) a dump recorded, read from CRIU's {@code files.img}: every
 * path CRIU will reopen at restore, with the size it will insist on when it recorded one, and from
 * the {@code mm-<id>.img} images which of them the tree maps shared and writable. These are
 * exactly the files whose absence or change fails {@code criu restore}, seen at the instant the
 * tree was frozen.
 */
public final class RegularFiles {
  public static final String FILE_NAME = "files.img";

  // images/magic.h
  private static final int IMG_COMMON_MAGIC = 0x54564319;
  private static final int FILES_MAGIC = 0x56303138;
  private static final int MM_MAGIC = 0x57492820;
  // images/mm.proto mm_entry.vmas = 14; images/vma.proto and CRIU's VMA_FILE_SHARED status bit
  private static final int MM_VMAS = 14;
  private static final int VMA_FILE_SHARED = 1 << 7;
  private static final int PROT_WRITE = 2;
  // images/fdinfo.proto: file_entry {type = 1, reg = 3}, fd_types REG = 1
  private static final int FD_TYPE_REG = 1;

  private static final Pattern MM_IMAGE = Pattern.compile("mm-\\d+\\.img");
  private static final int O_ACCMODE = 3;
  private static final int O_RDONLY = 0;
  private static final int S_IFMT = 0170000;
  private static final int S_IFREG = 0100000;
  private static final int S_IFDIR = 0040000;

  /**
   * One reg_file_entry (images/regfile.proto) as CRIU saw it while the tree was frozen: its path,
   * its size when CRIU checks it on restore, the flags it was open with and its inode's mode.
   *
   * @param flags open(2) flags of a file open on a descriptor (CRIU records a mapped file read-only)
   * @param mode st_mode, when this CRIU records it
   * @param mappedSharedWritable some process of the tree maps it MAP_SHARED with PROT_WRITE
   */
  public record RegularFile(String path, Long size, int flags, Integer mode, boolean mappedSharedWritable) {
    /** Open for writing, or mapped shared and writable: its content is the tree's own doing. */
    public boolean writable() {
      return (flags & O_ACCMODE) != O_RDONLY || mappedSharedWritable;
    }

    /** Empty when CRIU did not record the mode. */
    public Optional<Boolean> isDirectory() {
      return Optional.ofNullable(mode).map(m -> (m & S_IFMT) == S_IFDIR);
    }

    /** Empty when CRIU did not record the mode; false for devices, FIFOs and the like. */
    public Optional<Boolean> isRegularFile() {
      return Optional.ofNullable(mode).map(m -> (m & S_IFMT) == S_IFREG);
    }
  }

  private RegularFiles() {}

  /** Empty when the dump has no files.img (nothing was open); fails on a malformed image. */
  public static List<RegularFile> read(Path imagesDir) throws IOException {
    Path file = imagesDir.resolve(FILE_NAME);
    if (!Files.exists(file)) {
      return List.of();
    }
    Set<Long> sharedWritable = new HashSet<>();
    try (Stream<Path> images = Files.list(imagesDir)) {
      for (Path mm : images.filter(p -> MM_IMAGE.matcher(p.getFileName().toString()).matches()).toList()) {
        sharedWritable.addAll(sharedWritableFileIds(Files.readAllBytes(mm), mm.getFileName().toString()));
      }
    }
    return parse(Files.readAllBytes(file), sharedWritable);
  }

  private static List<RegularFile> parse(byte[] image, Set<Long> sharedWritable) throws IOException {
    List<RegularFile> files = new ArrayList<>();
    try {
      for (ProtobufReader entry : entries(image, FILES_MAGIC, FILE_NAME)) {
        RegularFile file = regularFile(entry, sharedWritable);
        if (file != null) {
          files.add(file);
        }
      }
    } catch (RuntimeException e) {
      throw new IOException(FILE_NAME + " is malformed: " + e.getMessage(), e);
    }
    return files;
  }

  /** The ids of the files some VMA of an {@code mm-<id>.img} maps shared and writable (vma_entry.shmid). */
  static Set<Long> sharedWritableFileIds(byte[] image, String name) throws IOException {
    Set<Long> ids = new HashSet<>();
    try {
      for (ProtobufReader mm : entries(image, MM_MAGIC, name)) {
        while (mm.hasMore()) {
          int tag = mm.readTag();
          if (ProtobufReader.fieldNumber(tag) != MM_VMAS || ProtobufReader.wireType(tag) != 2) {
            mm.skip(tag);
            continue;
          }
          ProtobufReader vma = mm.readMessage();
          long shmid = -1;
          long prot = 0;
          long status = 0;
          while (vma.hasMore()) {
            int field = vma.readTag();
            switch (ProtobufReader.wireType(field) == 0 ? ProtobufReader.fieldNumber(field) : -1) {
              case 4 -> shmid = vma.readVarint();
              case 5 -> prot = vma.readVarint();
              case 7 -> status = vma.readVarint();
              default -> vma.skip(field);
            }
          }
          if ((status & VMA_FILE_SHARED) != 0 && (prot & PROT_WRITE) != 0) {
            ids.add(shmid);
          }
        }
      }
    } catch (RuntimeException e) {
      throw new IOException(name + " is malformed: " + e.getMessage(), e);
    }
    return ids;
  }

  /** The length-prefixed protobuf entries after an image's two magic numbers. */
  private static List<ProtobufReader> entries(byte[] image, int magic, String name) throws IOException {
    ByteBuffer buf = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
    if (image.length < 8 || buf.getInt() != IMG_COMMON_MAGIC || buf.getInt() != magic) {
      throw new IOException(name + " does not start with the magic of its CRIU image");
    }
    List<ProtobufReader> entries = new ArrayList<>();
    while (buf.hasRemaining()) {
      int length = buf.getInt();
      if (length < 0 || length > buf.remaining()) {
        throw new IOException(name + " entry length " + length + " exceeds the file");
      }
      entries.add(new ProtobufReader(buf.slice().limit(length)));
      buf.position(buf.position() + length);
    }
    return entries;
  }

  private static RegularFile regularFile(ProtobufReader entry, Set<Long> sharedWritable) {
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
    long id = -1;
    int flags = 0;
    Integer mode = null;
    while (reg.hasMore()) {
      int tag = reg.readTag();
      int field = ProtobufReader.fieldNumber(tag);
      if (field == 6 && ProtobufReader.wireType(tag) == 2) {
        name = new String(reg.readBytes(), StandardCharsets.UTF_8);
      } else if (field == 8 && ProtobufReader.wireType(tag) == 0) {
        size = reg.readVarint();
      } else if (field == 1 && ProtobufReader.wireType(tag) == 0) {
        id = reg.readVarint();
      } else if (field == 2 && ProtobufReader.wireType(tag) == 0) {
        flags = (int) reg.readVarint();
      } else if (field == 10 && ProtobufReader.wireType(tag) == 0) {
        mode = (int) reg.readVarint();
      } else {
        reg.skip(tag);
      }
    }
    if (name == null) {
      return null;
    }
    // CRIU keeps names as the process saw them; some versions drop the leading slash.
    return new RegularFile(name.startsWith("/") ? name : "/" + name, size, flags, mode, sharedWritable.contains(id));
  }
}
