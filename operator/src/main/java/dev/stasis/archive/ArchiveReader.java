package dev.stasis.archive;

import com.github.luben.zstd.ZstdInputStreamNoFinalizer;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Extracts a stored archive into a directory in one streamed pass (hash and count the stored bytes,
 * decrypt if encrypted, decompress, untar) and then checks the stored bytes against the sha256 and
 * size recorded when the archive was stored.
 * Decryption hands on only authenticated segments, and the last one only as the last. The source is always
 * read to its end, so the hash covers every stored byte, trailing garbage included.
 *
 * <p>Files archived in chunks ({@link ChunkNames}) are joined back into one file each, so CRIU
 * sees the images exactly as they were written.
 *
 * <p>Whatever goes wrong, nothing stays behind: the target directory is emptied again (and removed
 * if this call created it), so CRIU never sees a partial or unverified checkpoint.
 */
public final class ArchiveReader {
  private static final int BUFFER_SIZE = 1 << 20;
  private static final String RESTORE_ELSEWHERE = " — restore from another checkpoint";

  /**
   * Extracts the archive read from {@code source} (left open) into {@code targetDirectory}, which
   * must be empty or absent.
   *
   * @param recorded the archive as recorded when it was stored (the Checkpoint's status): its sha256
   *     and size, and its size before compression. No more than that is read or unpacked, however
   *     long the stored object or however far its bytes decompress.
   * @throws ArchiveIntegrityException when the stored bytes differ from what was recorded,
   *     do not decode, or hold an entry that is unsafe to extract
   * @throws IOException when reading the source or writing the target fails
   */
  public void extract(InputStream source, Path targetDirectory, ArchiveCodec codec, ArchiveSummary recorded)
      throws IOException {
    extract(source, targetDirectory, codec, recorded, null);
  }

  /**
   * As {@link #extract(InputStream, Path, ArchiveCodec, ArchiveSummary)}, for an archive encrypted
   * with {@code decryptWith} (null: not encrypted).
   *
   * @throws ArchiveAuthenticationException when the stored bytes are the recorded ones but do not
   *     authenticate with the key: the key's bytes were replaced, or the archive (and the record of
   *     it) belongs to another checkpoint
   */
  public void extract(InputStream source, Path targetDirectory, ArchiveCodec codec, ArchiveSummary recorded,
      BoundKey decryptWith) throws IOException {
    Objects.requireNonNull(codec, "codec");
    String expectedSha256 = Objects.requireNonNull(recorded.sha256(), "sha256");
    long expectedStoredBytes = recorded.storedBytes();
    Path target = targetDirectory.toAbsolutePath().normalize();
    boolean createdTarget = prepareEmptyTarget(target);
    // One byte past the recorded size tells that the object is longer; no need to read on.
    HashingInputStream stored = new HashingInputStream(source, expectedStoredBytes + 1);
    try {
      try {
        unpack(stored, target, codec, decryptWith, recorded.sizeBytes());
      } catch (UndecodableArchive e) {
        // Bad bytes usually mean the stored object was damaged after it was written; the hash
        // of the whole object tells that apart from an archive that was written broken.
        stored.drain();
        verify(stored, expectedSha256, expectedStoredBytes, e.getCause());
        if (e.getCause() instanceof DecodesTooFar tooFar) {
          throw tooFar;
        }
        Optional<ArchiveAuthenticationException> notAuthentic = ArchiveAuthenticationException.causing(e.getCause());
        if (notAuthentic.isPresent()) {
          throw new ArchiveAuthenticationException("archive matches the sha256 recorded when it was stored but "
              + notAuthentic.get().getMessage() + "; refusing to restore it" + RESTORE_ELSEWHERE, notAuthentic.get());
        }
        throw new ArchiveIntegrityException("archive matches what was recorded when it was stored (" + stored.count()
            + " bytes, sha256 " + stored.sha256Hex() + ") but is not a valid " + describe(codec)
            + ": " + e.getCause() + "; it was broken when it was written"
            + RESTORE_ELSEWHERE, e.getCause());
      } catch (ArchiveIntegrityException refused) {
        // A damaged object can decode to entries that look unsafe: the hash tells damage apart
        // from an archive that was stored so.
        stored.drain();
        verify(stored, expectedSha256, expectedStoredBytes, refused);
        throw refused;
      }
      stored.drain();
      verify(stored, expectedSha256, expectedStoredBytes, null);
    } catch (IOException | RuntimeException e) {
      deleteExtracted(target, createdTarget, e);
      throw e;
    }
  }

  private static void unpack(HashingInputStream stored, Path target, ArchiveCodec codec, BoundKey decryptWith,
      long sizeBytes) throws IOException, UndecodableArchive {
    InputStream plain = decryptWith == null ? stored : new DecryptingInputStream(stored, decryptWith);
    try (InputStream decoded = new DecodedBytesLimit(decompressor(codec, plain), sizeBytes)) {
      TarArchiveInputStream tar = new TarArchiveInputStream(decoded);
      byte[] buffer = new byte[BUFFER_SIZE];
      ChunkedFiles chunked = new ChunkedFiles();
      TarArchiveEntry entry;
      while ((entry = decode(stored, tar::getNextEntry)) != null) {
        Optional<ChunkNames.Chunk> chunk = entry.isFile() ? ChunkNames.parse(entry.getName()) : Optional.empty();
        Path path = safePath(target, entry, chunk.map(ChunkNames.Chunk::fileName).orElse(entry.getName()));
        if (entry.isDirectory()) {
          Files.createDirectories(path);
          continue;
        }
        Files.createDirectories(path.getParent());
        try (OutputStream out = chunk.isPresent() ? chunked.open(path, chunk.get(), entry.getName())
            : chunked.openWhole(path, entry.getName())) {
          int n;
          while ((n = decode(stored, () -> tar.read(buffer, 0, buffer.length))) > 0) {
            out.write(buffer, 0, n);
          }
        }
        Files.setPosixFilePermissions(path, PermissionBits.toPermissions(entry.getMode()));
      }
      // Read past the tar end-of-archive records to the end of the compressed stream, so that a
      // damaged zstd frame end or checksum is noticed too.
      while (decode(stored, () -> decoded.read(buffer, 0, buffer.length)) >= 0) {
        // nothing to keep after the end of the tar stream
      }
    }
  }

  /**
   * The plain bytes of a stored object that is not a tar of files (a pod checkpoint's tar skeleton):
   * decrypted with {@code decryptWith} unless null, decompressed. The caller checks the stored bytes
   * (an {@link ExpectedBytesInputStream} under this, read to its end) before it trusts the result.
   */
  public static InputStream decoded(InputStream stored, ArchiveCodec codec, BoundKey decryptWith) throws IOException {
    return decompressor(codec, decryptWith == null ? stored : new DecryptingInputStream(stored, decryptWith));
  }

  private static InputStream decompressor(ArchiveCodec codec, InputStream compressed)
      throws IOException {
    switch (codec) {
      case ZSTD:
        return new ZstdInputStreamNoFinalizer(compressed);
      case NONE:
        return compressed;
      default:
        throw new IllegalArgumentException("unknown codec " + codec);
    }
  }

  /**
   * Runs one read of the decoded stream and tells failures of the storage (rethrown as they are)
   * apart from bytes that do not decode.
   */
  private static <T> T decode(HashingInputStream stored, DecodingRead<T> read)
      throws IOException, UndecodableArchive {
    try {
      return read.run();
    } catch (IOException | RuntimeException e) {
      if (stored.sourceFailed()) {
        throw e;
      }
      throw new UndecodableArchive(e);
    }
  }

  /**
   * Where an entry's bytes go ({@code fileName}: the entry's name, or for a chunk the name of the
   * file it is part of), refusing anything that could write outside the target or is not plain data.
   */
  private static Path safePath(Path target, TarArchiveEntry entry, String fileName)
      throws ArchiveIntegrityException {
    String name = entry.getName();
    String refusal = null;
    if (entry.isSymbolicLink()) {
      refusal = "it is a symbolic link";
    } else if (entry.isLink()) {
      refusal = "it is a hard link";
    } else if (entry.isCharacterDevice() || entry.isBlockDevice()) {
      refusal = "it is a device";
    } else if (entry.isFIFO()) {
      refusal = "it is a FIFO";
    } else if (!entry.isDirectory() && !entry.isFile()) {
      refusal = "its type '" + (char) entry.getLinkFlag() + "' is neither a file nor a directory";
    } else if (fileName.isEmpty() || fileName.startsWith("/")) {
      refusal = "it is an absolute path";
    } else if (Stream.of(fileName.split("/")).anyMatch(".."::equals)) {
      refusal = "its path climbs out of the target directory";
    }
    Path path = target.resolve(fileName).normalize();
    // "./" names the target itself, which tar -C dir . archives as a directory entry.
    boolean namesTarget = path.equals(target) && !entry.isDirectory();
    if (refusal == null && (!path.startsWith(target) || namesTarget)) {
      refusal = "its path does not name anything inside the target directory";
    }
    if (refusal != null) {
      throw new ArchiveIntegrityException(
          "refusing to extract archive entry '" + name + "': " + refusal);
    }
    return path;
  }

  private static void verify(
      HashingInputStream stored, String expectedSha256, long expectedStoredBytes, Throwable cause)
      throws ArchiveIntegrityException {
    if (stored.count() != expectedStoredBytes) {
      throw new ArchiveIntegrityException("archive size mismatch: " + expectedStoredBytes
          + " bytes were recorded when it was stored, storage returned "
          + (stored.count() < expectedStoredBytes ? stored.count() + "; the archive is truncated"
              : "more; the archive is not the one that was written") + RESTORE_ELSEWHERE, cause);
    }
    if (!stored.sha256Hex().equalsIgnoreCase(expectedSha256)) {
      throw new ArchiveIntegrityException("archive sha256 mismatch: " + expectedSha256
          + " was recorded when it was stored, the stored bytes hash to " + stored.sha256Hex()
          + "; the archive was damaged or replaced" + RESTORE_ELSEWHERE, cause);
    }
  }

  /** @return whether the target had to be created */
  private static boolean prepareEmptyTarget(Path target) throws IOException {
    if (Files.isDirectory(target)) {
      try (Stream<Path> children = Files.list(target)) {
        if (children.findAny().isPresent()) {
          throw new IOException("cannot extract an archive into " + target
              + ": the directory is not empty, and extracting must not mix in or delete other files");
        }
      }
      return false;
    }
    Files.createDirectories(target);
    return true;
  }

  /** Everything in the target came from this archive, since it started out empty. */
  private static void deleteExtracted(Path target, boolean createdTarget, Exception failure) {
    try {
      Files.walkFileTree(target, new SimpleFileVisitor<>() {
        @Override
        public FileVisitResult visitFile(Path file, BasicFileAttributes attributes)
            throws IOException {
          Files.delete(file);
          return FileVisitResult.CONTINUE;
        }

        @Override
        public FileVisitResult postVisitDirectory(Path directory, IOException e)
            throws IOException {
          if (e != null) {
            throw e;
          }
          if (createdTarget || !directory.equals(target)) {
            Files.delete(directory);
          }
          return FileVisitResult.CONTINUE;
        }
      });
    } catch (IOException e) {
      failure.addSuppressed(e);
    }
  }

  private static String describe(ArchiveCodec codec) {
    return codec == ArchiveCodec.ZSTD ? "zstd-compressed tar stream" : "tar stream";
  }

  /**
   * Joins chunk entries back into their files: chunk 0 creates the file, each next chunk appends,
   * and anything out of order, or a file that is both whole and chunked, makes the archive invalid.
   */
  private static final class ChunkedFiles {
    private final Map<Path, Integer> nextChunk = new HashMap<>();

    OutputStream open(Path file, ChunkNames.Chunk chunk, String entryName) throws IOException {
      int expected = nextChunk.getOrDefault(file, 0);
      if (chunk.index() != expected) {
        throw new ArchiveIntegrityException("archive entry '" + entryName + "' is out of order: chunk "
            + expected + " of " + chunk.fileName() + " should come next" + RESTORE_ELSEWHERE);
      }
      nextChunk.put(file, expected + 1);
      if (expected > 0) {
        return Files.newOutputStream(file, StandardOpenOption.APPEND);
      }
      try {
        return Files.newOutputStream(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      } catch (FileAlreadyExistsException e) {
        throw twice(entryName, chunk.fileName());
      }
    }

    OutputStream openWhole(Path file, String entryName) throws IOException {
      if (nextChunk.containsKey(file)) {
        throw twice(entryName, entryName);
      }
      return Files.newOutputStream(file);
    }

    private static ArchiveIntegrityException twice(String entryName, String fileName) {
      return new ArchiveIntegrityException("archive entry '" + entryName + "' writes " + fileName
          + ", which the archive holds both whole and in chunks" + RESTORE_ELSEWHERE);
    }
  }

  /**
   * Fails once more bytes decode than the archive held before compression: bytes that decompress
   * without end (a zstd "bomb" in place of the archive) never fill the node's disk.
   */
  private static final class DecodedBytesLimit extends FilterInputStream {
    private final long limit;
    private long count;

    DecodedBytesLimit(InputStream decoded, long limit) {
      super(decoded);
      this.limit = limit;
    }

    @Override
    public int read() throws IOException {
      int b = super.read();
      if (b >= 0) {
        counted(1);
      }
      return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      int n = super.read(b, off, len);
      if (n > 0) {
        counted(n);
      }
      return n;
    }

    private void counted(int n) throws ArchiveIntegrityException {
      count += n;
      if (count > limit) {
        throw new DecodesTooFar("the archive decompresses to more than the " + limit
            + " bytes recorded when it was stored; it is not the one that was written" + RESTORE_ELSEWHERE);
      }
    }
  }

  private static final class DecodesTooFar extends ArchiveIntegrityException {
    DecodesTooFar(String message) {
      super(message);
    }
  }

  /** The stored bytes were read fine but are not a valid archive. */
  private static final class UndecodableArchive extends Exception {
    UndecodableArchive(Throwable cause) {
      super(cause);
    }
  }

  @FunctionalInterface
  private interface DecodingRead<T> {
    T run() throws IOException;
  }
}
