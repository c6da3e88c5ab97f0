package dev.stasis.archive;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.Objects;

/**
 * Turns a checkpoint directory into archive bytes in a single streamed pass: tar, then zstd, then
 * encryption with the storage's key (if it has one, see {@link EncryptingOutputStream}), then
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
    return write(directory, destination, codec, null);
  }

  /** As {@link #write(Path, OutputStream, ArchiveCodec)}, encrypted with {@code encryptWith} unless null. */
  public ArchiveSummary write(Path directory, OutputStream destination, ArchiveCodec codec, BoundKey encryptWith)
      throws IOException {
    try (OpenArchive archive = open(destination, codec, encryptWith)) {
      archive.addFilesOf(directory, name -> false);
      return archive.finish();
    }
  }

  /**
   * Starts an archive whose entries the caller adds one at a time, for files that are not all
   * there yet (CRIU images while CRIU still writes them).
   */
  public OpenArchive open(OutputStream destination, ArchiveCodec codec) throws IOException {
    return open(destination, codec, null);
  }

  /** As {@link #open(OutputStream, ArchiveCodec)}, encrypted with {@code encryptWith} unless null. */
  public OpenArchive open(OutputStream destination, ArchiveCodec codec, BoundKey encryptWith) throws IOException {
    Objects.requireNonNull(codec, "codec");
    return new OpenArchive(destination, codec, encryptWith, ZSTD_LEVEL, zstdWorkers);
  }

  /**
   * Stores a tar archive someone else produced (the kubelet's checkpoint archive) byte for byte,
   * compressed by {@code codec}: decompressing the stored object gives back the very same tar, so
   * tools that read the original (checkpointctl) read the download. Also one streamed pass.
   * Encrypted with {@code encryptWith} unless it is null.
   *
   * @return the sizes and sha256 of the stored bytes, and the sha256 of the tar itself
   */
  public StoredTar writeTar(InputStream tar, OutputStream destination, ArchiveCodec codec, BoundKey encryptWith)
      throws IOException {
    Objects.requireNonNull(codec, "codec");
    HashingOutputStream stored = new HashingOutputStream(destination);
    OutputStream encrypted = OpenArchive.encrypted(stored, encryptWith);
    // Encrypted, the compressed bytes differ from the stored ones: a checkpoint image's layer is them.
    HashingOutputStream compressed = encryptWith == null ? stored : new HashingOutputStream(encrypted);
    HashingOutputStream tarBytes;
    // Closing the compressor ends its frame; closing the hashing streams only flushes them.
    try (OutputStream compressor = OpenArchive.compressor(codec, compressed, ZSTD_LEVEL, zstdWorkers)) {
      tarBytes = new HashingOutputStream(compressor);
      try (OutputStream buffered = new BufferedOutputStream(tarBytes, OpenArchive.BUFFER_SIZE)) {
        tar.transferTo(buffered);
      }
    }
    encrypted.close(); // the last encrypted segment; only a flush when not encrypting
    ArchiveSummary summary = new ArchiveSummary(tarBytes.count(), stored.count(), stored.sha256Hex());
    return encryptWith == null
        ? new StoredTar(summary, tarBytes.sha256Hex(), summary.sha256(), summary.storedBytes())
        : new StoredTar(summary, tarBytes.sha256Hex(), compressed.sha256Hex(), compressed.count());
  }

  /**
   * What {@link #writeTar} stored, the sha256 of the tar before compression, and the sha256 and
   * size of the compressed tar (before encryption; without it, the stored bytes).
   */
  public record StoredTar(ArchiveSummary summary, String tarSha256, String compressedSha256, long compressedBytes) {}
}
