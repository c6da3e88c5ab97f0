package dev.stasis.archive;

import com.github.luben.zstd.ZstdOutputStreamNoFinalizer;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NotDirectoryException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * Turns a checkpoint directory into archive bytes in a single streamed pass: tar, then zstd, then
 * sha256 and byte counts, then the destination (usually an {@code ObjectUpload}). Nothing is staged
 * on disk and memory use stays at a few MiB however large the checkpoint is.
 *
 * <p>The archive holds the directory's regular files under their relative paths, in sorted order,
 * so the same directory always gives the same tar stream. Directories are implied by the paths.
 * Symbolic links and special files are refused rather than silently left out: CRIU image
 * directories hold none, and a restore must not miss a file without anyone noticing.
 */
public final class ArchiveWriter {
  /** zstd's default level, its usual balance of speed and ratio for streaming. */
  private static final int ZSTD_LEVEL = 3;
  // Large copies keep JNI crossings and syscalls rare when streaming GiBs.
  private static final int BUFFER_SIZE = 1 << 20;

  private final int zstdWorkers;

  /**
   * Compresses on up to two zstd worker threads, overlapping compression with reading, hashing
   * and uploading: on the order of 1 GB/s, more than most node uplinks carry, without taking over
   * the node.
   */
  public ArchiveWriter() {
    this(Math.min(2, Runtime.getRuntime().availableProcessors()));
  }

  /**
   * @param zstdWorkers zstd background compression threads; 0 compresses on the calling thread
   */
  public ArchiveWriter(int zstdWorkers) {
    if (zstdWorkers < 0) {
      throw new IllegalArgumentException("zstdWorkers must be >= 0, got " + zstdWorkers);
    }
    this.zstdWorkers = zstdWorkers;
  }

  /**
   * Writes the archive of {@code directory} to {@code destination}, which is flushed but left open.
   *
   * @return the sizes and the sha256 of the bytes written to {@code destination}
   */
  public ArchiveSummary write(Path directory, OutputStream destination, ArchiveCodec codec)
      throws IOException {
    Objects.requireNonNull(codec, "codec");
    List<Path> files = regularFilesIn(directory);

    HashingOutputStream stored = new HashingOutputStream(destination);
    CountingOutputStream tarBytes = new CountingOutputStream(compressor(codec, stored));
    // TarArchiveOutputStream writes in 10 KiB records; batch them before they reach zstd.
    try (TarArchiveOutputStream tar =
        new TarArchiveOutputStream(new BufferedOutputStream(tarBytes, BUFFER_SIZE))) {
      tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      byte[] buffer = new byte[BUFFER_SIZE];
      for (Path file : files) {
        TarArchiveEntry entry = tar.createArchiveEntry(file, entryName(directory, file));
        // commons-compress records 0644 whatever the file's permissions are: keep its
        // regular-file type bits and put the file's own permission bits in.
        entry.setMode(TarArchiveEntry.DEFAULT_FILE_MODE & ~0777
            | PermissionBits.toMode(Files.getPosixFilePermissions(file)));
        tar.putArchiveEntry(entry);
        try (InputStream in = Files.newInputStream(file)) {
          int n;
          while ((n = in.read(buffer)) > 0) {
            tar.write(buffer, 0, n);
          }
        }
        tar.closeArchiveEntry();
      }
      tar.finish();
    }
    return new ArchiveSummary(tarBytes.count(), stored.count(), stored.sha256Hex());
  }

  /**
   * Stores a tar archive someone else produced (the kubelet's checkpoint archive) byte for byte,
   * compressed by {@code codec}: decompressing the stored object gives back the very same tar, so
   * tools that read the original (checkpointctl) read the download. Also one streamed pass.
   *
   * @return the sizes and sha256 of the stored bytes, and the sha256 of the tar itself
   */
  public StoredTar writeTar(InputStream tar, OutputStream destination, ArchiveCodec codec)
      throws IOException {
    Objects.requireNonNull(codec, "codec");
    HashingOutputStream stored = new HashingOutputStream(destination);
    HashingOutputStream tarBytes;
    // Closing the compressor ends its frame; closing the hashing streams only flushes them.
    try (OutputStream compressed = compressor(codec, stored)) {
      tarBytes = new HashingOutputStream(compressed);
      try (OutputStream buffered = new BufferedOutputStream(tarBytes, BUFFER_SIZE)) {
        tar.transferTo(buffered);
      }
    }
    return new StoredTar(new ArchiveSummary(tarBytes.count(), stored.count(), stored.sha256Hex()),
        tarBytes.sha256Hex());
  }

  /** What {@link #writeTar} stored, and the sha256 of the tar before compression. */
  public record StoredTar(ArchiveSummary summary, String tarSha256) {}

  private OutputStream compressor(ArchiveCodec codec, OutputStream stored) throws IOException {
    switch (codec) {
      case ZSTD:
        ZstdOutputStreamNoFinalizer zstd = new ZstdOutputStreamNoFinalizer(stored, ZSTD_LEVEL);
        // The frame checksum lets the reader tell a bad decompression from a bad download.
        zstd.setChecksum(true);
        zstd.setWorkers(zstdWorkers);
        return zstd;
      case NONE:
        return stored;
      default:
        throw new IllegalArgumentException("unknown codec " + codec);
    }
  }

  private static String entryName(Path directory, Path file) {
    return directory.relativize(file).toString();
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
    files.sort(Comparator.comparing(file -> entryName(directory, file)));
    return files;
  }
}
