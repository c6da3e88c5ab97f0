package dev.stasis.agent.process;

import dev.stasis.archive.Manifest.RequiredPath;
import dev.stasis.archive.Sha256;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Optional;

/**
 * What makes a file "the same file" to CRIU, recorded at checkpoint and compared in the pre-flight.
 * CRIU checks a reopened file's size (unless it was open for appending) and, for ELF files, its
 * GNU build-id; Stasis does the same before CRIU runs, and adds a sha256 for mapped files without
 * a build-id (locale archives, mapped data) so that changed libraries are caught, not just resized ones.
 */
public final class FileIdentity {
  /** Mapped files above this are compared by size only: hashing them would slow every checkpoint. */
  static final long SHA256_MAX_BYTES = 64L << 20;

  private static final int PT_NOTE = 4;
  private static final int NT_GNU_BUILD_ID = 3;
  private static final int MAX_NOTE_BYTES = 1 << 16;

  private FileIdentity() {}

  /**
   * Records {@code file} (the file as the process sees it, e.g. through /proc) under {@code path}.
   * {@code appendOnly}: open write-only for appending, whose size CRIU does not check (a log).
   */
  public static RequiredPath record(String path, String kind, Path file, boolean appendOnly) throws IOException {
    RequiredPath recorded = new RequiredPath(path, kind);
    if (isDirectoryKind(kind)) {
      return recorded;
    }
    long size = Files.size(file);
    if (!appendOnly) {
      recorded.size = size;
      recorded.buildId = buildId(file).orElse(null);
    }
    boolean mapped = kind.equals(RequiredPath.EXECUTABLE) || kind.equals(RequiredPath.MAPPED);
    if (mapped && recorded.buildId == null && size <= SHA256_MAX_BYTES) {
      recorded.sha256 = sha256(file);
    }
    return recorded;
  }

  /**
   * A file the tree wrote to, as CRIU saw it while the tree was frozen: its content is the tree's
   * own, so only what CRIU checks on restore is recorded, the kind and the size CRIU will insist on
   * ({@code criuSize}; null where CRIU does not check it, a file open for appending).
   */
  static RequiredPath written(String path, String kind, Long criuSize) {
    RequiredPath recorded = new RequiredPath(path, kind);
    recorded.size = criuSize;
    recorded.written = true;
    return recorded;
  }

  /** Empty when {@code file} matches what was recorded, else what differs, in words. */
  public static Optional<Difference> compare(RequiredPath recorded, Path file) {
    if (!Files.exists(file)) {
      return Optional.of(new Difference(true, (recorded.kind.equals(RequiredPath.MOUNT) ? "missing mount point " : "missing ")
          + recorded.path));
    }
    boolean directory = Files.isDirectory(file);
    if (isDirectoryKind(recorded.kind) != directory) {
      return Optional.of(new Difference(false, recorded.path + (directory ? " is now a directory" : " is no longer a directory")));
    }
    if (!directory && !Files.isRegularFile(file)) {
      return Optional.of(new Difference(false, recorded.path + " is no longer a regular file"));
    }
    try {
      if (recorded.size != null && Files.size(file) != recorded.size) {
        String why = Boolean.TRUE.equals(recorded.written)
            ? " (written to after the checkpoint; CRIU restores a file the job writes only at the size it had then)" : "";
        return Optional.of(new Difference(false, recorded.path + " has " + Files.size(file) + " bytes, "
            + recorded.size + " at the checkpoint" + why));
      }
      if (recorded.buildId != null) {
        String actual = buildId(file).orElse("none");
        if (!actual.equals(recorded.buildId)) {
          return Optional.of(new Difference(false, recorded.path + " has build-id " + actual + ", "
              + recorded.buildId + " at the checkpoint"));
        }
      }
      if (recorded.sha256 != null && Files.size(file) <= SHA256_MAX_BYTES && !sha256(file).equals(recorded.sha256)) {
        return Optional.of(new Difference(false, recorded.path + " has other content than at the checkpoint (sha256)"));
      }
    } catch (IOException e) {
      return Optional.of(new Difference(false, recorded.path + " cannot be read: " + e.getMessage()));
    }
    return Optional.empty();
  }

  /** A recorded path that does not match; {@code missing} when it is not there at all. */
  public record Difference(boolean missing, String description) {}

  private static boolean isDirectoryKind(String kind) {
    return switch (kind) {
      case RequiredPath.DIRECTORY, RequiredPath.CWD, RequiredPath.ROOT, RequiredPath.MOUNT -> true;
      default -> false;
    };
  }

  /** The GNU build-id note of an ELF file (32/64-bit, either byte order), lowercase hex. */
  static Optional<String> buildId(Path file) throws IOException {
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      ByteBuffer ident = read(channel, 0, 16);
      if (ident == null || ident.getInt(0) != 0x7f454c46) {
        return Optional.empty();
      }
      boolean is64 = ident.get(4) == 2;
      ByteOrder order = ident.get(5) == 2 ? ByteOrder.BIG_ENDIAN : ByteOrder.LITTLE_ENDIAN;
      ByteBuffer header = read(channel, 0, is64 ? 64 : 52);
      if (header == null) {
        return Optional.empty();
      }
      header.order(order);
      long phoff = is64 ? header.getLong(0x20) : Integer.toUnsignedLong(header.getInt(0x1c));
      int phentsize = Short.toUnsignedInt(header.getShort(is64 ? 0x36 : 0x2a));
      int phnum = Short.toUnsignedInt(header.getShort(is64 ? 0x38 : 0x2c));
      for (int i = 0; i < phnum; i++) {
        ByteBuffer ph = read(channel, phoff + (long) i * phentsize, is64 ? 56 : 32);
        if (ph == null) {
          return Optional.empty();
        }
        ph.order(order);
        if (ph.getInt(0) != PT_NOTE) {
          continue;
        }
        long offset = is64 ? ph.getLong(8) : Integer.toUnsignedLong(ph.getInt(4));
        long size = is64 ? ph.getLong(32) : Integer.toUnsignedLong(ph.getInt(16));
        long align = is64 ? ph.getLong(48) : Integer.toUnsignedLong(ph.getInt(28));
        ByteBuffer notes = read(channel, offset, (int) Math.min(size, MAX_NOTE_BYTES));
        if (notes != null) {
          Optional<String> id = buildIdNote(notes.order(order), align == 8 ? 8 : 4);
          if (id.isPresent()) {
            return id;
          }
        }
      }
      return Optional.empty();
    }
  }

  private static Optional<String> buildIdNote(ByteBuffer notes, int align) {
    int pos = 0;
    while (pos + 12 <= notes.limit()) {
      int nameSize = notes.getInt(pos);
      int descSize = notes.getInt(pos + 4);
      int type = notes.getInt(pos + 8);
      int nameStart = pos + 12;
      int descStart = nameStart + pad(nameSize, align);
      if (nameSize < 0 || descSize < 0 || descStart + descSize > notes.limit()) {
        return Optional.empty();
      }
      if (type == NT_GNU_BUILD_ID && nameSize == 4 && notes.getInt(nameStart) == gnu(notes.order())) {
        byte[] id = new byte[descSize];
        notes.get(descStart, id);
        return Optional.of(HexFormat.of().formatHex(id));
      }
      pos = descStart + pad(descSize, align);
    }
    return Optional.empty();
  }

  /** "GNU\0" read as an int in the note's byte order. */
  private static int gnu(ByteOrder order) {
    return ByteBuffer.wrap(new byte[] {'G', 'N', 'U', 0}).order(order).getInt();
  }

  private static int pad(int size, int align) {
    return (size + align - 1) / align * align;
  }

  private static ByteBuffer read(FileChannel channel, long position, int length) throws IOException {
    if (position < 0 || length < 0 || position + length > channel.size()) {
      return null;
    }
    ByteBuffer buf = ByteBuffer.allocate(length);
    while (buf.hasRemaining()) {
      if (channel.read(buf, position + buf.position()) < 0) {
        return null;
      }
    }
    return buf.flip();
  }

  static String sha256(Path file) throws IOException {
    MessageDigest digest = Sha256.newDigest();
    try (InputStream in = Files.newInputStream(file)) {
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        digest.update(buf, 0, n);
      }
    }
    return Sha256.hex(digest.digest());
  }
}
