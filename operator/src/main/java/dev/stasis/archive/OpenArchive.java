package dev.stasis.archive;

import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Predicate;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * An archive being written: entries go through tar, zstd, encryption (when the storage has a key)
 * and sha256 to the destination as they are added, so the caller decides when each file is ready. Large files may be added in chunks
 * (see {@link ChunkNames}) while they still grow. {@link #finish()} ends the archive; closing an
 * unfinished one releases it without making it valid, for a caller that is abandoning the upload.
 *
 * <p>Not thread-safe: one thread adds the entries.
 */
public final class OpenArchive implements Closeable {
  // Large copies keep JNI crossings and syscalls rare when streaming GiBs.
  static final int BUFFER_SIZE = 1 << 20;

  private final HashingOutputStream stored;
  private final CountingOutputStream tarBytes;
  private final TarArchiveOutputStream tar;
  private final byte[] buffer = new byte[BUFFER_SIZE];
  private boolean finished;

  OpenArchive(OutputStream destination, ArchiveCodec codec, BoundKey encryptWith, int zstdLevel, int zstdWorkers)
      throws IOException {
    this.stored = new HashingOutputStream(destination);
    this.tarBytes = new CountingOutputStream(compressor(codec, encrypted(stored, encryptWith), zstdLevel, zstdWorkers));
    // TarArchiveOutputStream writes in 10 KiB records; batch them before they reach zstd.
    this.tar = new TarArchiveOutputStream(new BufferedOutputStream(tarBytes, BUFFER_SIZE));
    tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
    tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
  }

  /** Adds the whole of {@code file} as entry {@code name}, with the file's permission bits. */
  public void addFile(String name, Path file) throws IOException {
    if (ChunkNames.isChunkName(name)) {
      throw new IOException("cannot archive " + file + " as '" + name
          + "': names ending in .chunk-NNNNNN are reserved for files archived in chunks");
    }
    try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
      addEntry(name, file, in, 0, in.size());
    }
  }

  /**
   * Adds the regular files under {@code directory}, named by their relative paths, in sorted order
   * so that the same directory always gives the same tar stream; directories are implied by the
   * paths. Symbolic links and special files are refused rather than silently left out: CRIU image
   * directories hold none, and a restore must not miss a file without anyone noticing.
   *
   * @param skip relative names not to add (files the caller archived in chunks)
   */
  public void addFilesOf(Path directory, Predicate<String> skip) throws IOException {
    for (Path file : regularFilesIn(directory)) {
      String name = directory.relativize(file).toString();
      if (!skip.test(name)) {
        addFile(name, file);
      }
    }
  }

  /**
   * Adds bytes {@code [offset, offset + length)} of {@code file} as chunk {@code index} of the
   * file named {@code fileName} in the archive. Chunks of one file must be added in order,
   * starting at 0 and together covering the file; the file may still grow past them.
   */
  public void addChunk(String fileName, int index, Path file, long offset, long length) throws IOException {
    try (FileChannel in = FileChannel.open(file, StandardOpenOption.READ)) {
      addEntry(ChunkNames.name(fileName, index), file, in, offset, length);
    }
  }

  private void addEntry(String name, Path file, FileChannel in, long offset, long length) throws IOException {
    requireOpen();
    TarArchiveEntry entry = new TarArchiveEntry(name);
    entry.setSize(length);
    entry.setModTime(Files.getLastModifiedTime(file));
    // Keep the regular-file type bits and put the file's own permission bits in.
    entry.setMode(TarArchiveEntry.DEFAULT_FILE_MODE & ~0777
        | PermissionBits.toMode(Files.getPosixFilePermissions(file)));
    tar.putArchiveEntry(entry);
    ByteBuffer window = ByteBuffer.wrap(buffer);
    long position = offset;
    long end = offset + length;
    while (position < end) {
      window.clear().limit((int) Math.min(buffer.length, end - position));
      int n = in.read(window, position);
      if (n < 0) {
        throw new EOFException(file + " ended at byte " + position + " while archiving it up to byte " + end
            + ": it shrank while being archived");
      }
      tar.write(buffer, 0, n);
      position += n;
    }
    tar.closeArchiveEntry();
  }

  /** Bytes of tar (before compression) passed on so far: up to a buffer's worth behind what was added. */
  public long tarBytes() {
    return tarBytes.count();
  }

  /**
   * Ends the archive and flushes it to the destination, which stays open.
   *
   * @return the sizes and the sha256 of the bytes written to the destination
   */
  public ArchiveSummary finish() throws IOException {
    requireOpen();
    tar.finish();
    tar.close();
    finished = true;
    return new ArchiveSummary(tarBytes.count(), stored.count(), stored.sha256Hex());
  }

  /** After {@link #finish()} a no-op; before it, releases the compressor and leaves the archive invalid. */
  @Override
  public void close() {
    if (finished) {
      return;
    }
    finished = true;
    try {
      tar.close();
    } catch (IOException e) {
      // the destination is being abandoned; all that matters is that the compressor is released
    }
  }

  private static List<Path> regularFilesIn(Path directory) throws IOException {
    if (!Files.isDirectory(directory)) {
      throw new NotDirectoryException(directory.toString());
    }
    List<Path> files = new ArrayList<>();
    Files.walkFileTree(directory, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) throws IOException {
        if (!attributes.isRegularFile()) {
          throw new IOException("cannot archive " + file + ": it is "
              + (attributes.isSymbolicLink() ? "a symbolic link" : "not a regular file")
              + "; archives hold only regular files");
        }
        files.add(file);
        return FileVisitResult.CONTINUE;
      }
    });
    files.sort(Comparator.comparing(file -> directory.relativize(file).toString()));
    return files;
  }

  private void requireOpen() throws IOException {
    if (finished) {
      throw new IOException("the archive is already finished");
    }
  }

  /** {@code stored} itself when there is no key; closing the encrypting stream writes its last segment. */
  static OutputStream encrypted(OutputStream stored, BoundKey key) throws IOException {
    return key == null ? stored : new EncryptingOutputStream(stored, key);
  }

  static OutputStream compressor(ArchiveCodec codec, OutputStream stored, int level, int workers)
      throws IOException {
    switch (codec) {
      case ZSTD:
        return new RawWhenIncompressible(stored, level, workers);
      case NONE:
        return stored;
      default:
        throw new IllegalArgumentException("unknown codec " + codec);
    }
  }
}
