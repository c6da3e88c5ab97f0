package dev.stasis.agent.checkpoint;

import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ArchiveWriter;
import dev.stasis.archive.OpenArchive;
import dev.stasis.storage.ObjectUpload;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;

/**
 * Uploads a checkpoint's archive, while CRIU is still dumping when the tree stays frozen until it
 * is stored ({@link WhileDumping#ARCHIVE}). CRIU appends each process's memory to one
 * {@code pages-<n>.img} and never rewrites what it wrote, so every full chunk of those files is
 * then archived and sent as soon as it is on disk. Once CRIU is done, the rest of each pages file
 * and every other image (small, and complete only then) follow, and the upload is committed.
 *
 * <p>A tree that CRIU resumes itself after its dump ({@link WhileDumping#WAIT}) is frozen exactly
 * while CRIU writes the images: archiving them meanwhile, even at a lower priority, stretched that
 * freeze beyond a bare dump's (bench/analysis.md, "Frozen time"), so then nothing is read before
 * CRIU is done.
 *
 * <p>The upload runs at a lower CPU priority (nice {@value #UPLOAD_NICE}) than CRIU and the workloads.
 *
 * <p>A deduplicated checkpoint ({@link ChunkedImagesUpload}) leaves the pages files out of the
 * archive: they are cut into chunks while CRIU writes them, as far as each process's pagemap on disk
 * says where the pages belong, after the namespace's chunk folder was listed.
 *
 * <p>Only {@link #finish()}, called after CRIU succeeded, commits the upload; closing it without
 * that aborts it and nothing stays in storage.
 */
final class StreamingArchiveUpload implements AutoCloseable {
  /** Whether to archive the images while CRIU writes them, or only once it is done. */
  enum WhileDumping {
    /** The tree stays frozen until its archive is stored: archiving alongside CRIU shortens the freeze. */
    ARCHIVE,
    /** CRIU resumes the tree when its images are written: archiving alongside would compete with it for that time. */
    WAIT
  }

  /** Big enough that entries stay few (64 per GiB), small enough that the upload keeps up with CRIU. */
  static final long DEFAULT_CHUNK_BYTES = 16L << 20;
  // How often the pages files are looked at while CRIU writes them: a fraction of the time CRIU
  // needs for one chunk, and cheap (one directory listing).
  private static final long POLL_MILLIS = 10;
  static final int UPLOAD_NICE = 10;
  private static final long LOWERING_TIMEOUT_SECONDS = 5;

  private final Path imagesDir;
  private final WhileDumping whileDumping;
  private final long chunkBytes;
  private final ObjectUpload upload;
  private final ArchiveCodec codec;
  /** Null: the storage does not encrypt. */
  private final BoundKey encryptWith;
  /** Null: the pages files go into the archive; else they are stored as chunks by it. */
  private final ChunkedImagesUpload chunkedImages;
  /** Told the tar bytes archived so far (the checkpoint's progress), by the follower thread. */
  private final LongConsumer tarBytesArchived;
  /** Pages files archived in chunks so far, by name. Touched by the follower thread only. */
  private final Map<String, FollowedFile> chunked = new TreeMap<>();
  private final FutureTask<Uploaded> following = new FutureTask<>(this::follow);
  private final Thread follower;
  /** Counted down once the follower runs at its lower priority, before CRIU is started. */
  private final CountDownLatch lowered = new CountDownLatch(1);
  private volatile boolean imagesComplete;
  private boolean committed;

  private StreamingArchiveUpload(Path imagesDir, WhileDumping whileDumping, long chunkBytes, ObjectUpload upload,
      ArchiveCodec codec, BoundKey encryptWith, ChunkedImagesUpload chunkedImages, LongConsumer archived, String name) {
    this.imagesDir = imagesDir;
    this.whileDumping = whileDumping;
    this.chunkBytes = chunkBytes;
    this.upload = upload;
    this.codec = codec;
    this.encryptWith = encryptWith;
    this.chunkedImages = chunkedImages;
    this.tarBytesArchived = archived;
    this.follower = new Thread(following, "archive-upload-" + name);
    follower.setDaemon(true);
  }

  /**
   * Starts streaming into {@code upload} whatever CRIU writes into {@code imagesDir} from now on.
   * Returns once the upload's thread has lowered its priority, so that doing so does not compete
   * with CRIU freezing the workload.
   *
   * @param encryptWith the storage's current key, or null when it does not encrypt
   * @param chunkedImages stores the pages files of a deduplicated checkpoint; null: they are archived
   * @param whileDumping whether the pages files are archived while CRIU writes them (a deduplicated
   *     checkpoint's are cut while it does either way, at the lowest priority: {@link ChunkedImagesUpload})
   * @param archived told the bytes of tar archived so far, before compression, as they grow
   * @param name names the upload's thread, for people reading thread dumps
   */
  static StreamingArchiveUpload start(ObjectUpload upload, ArchiveCodec codec, BoundKey encryptWith,
      ChunkedImagesUpload chunkedImages, Path imagesDir, WhileDumping whileDumping, long chunkBytes,
      LongConsumer archived, String name) throws IOException {
    try {
      StreamingArchiveUpload streaming = new StreamingArchiveUpload(imagesDir, whileDumping, chunkBytes, upload, codec,
          encryptWith, chunkedImages, archived, name);
      streaming.follower.start();
      streaming.lowered.await(LOWERING_TIMEOUT_SECONDS, TimeUnit.SECONDS);
      return streaming;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      upload.abort();
      throw new InterruptedIOException("interrupted while starting the upload");
    } catch (RuntimeException e) {
      upload.abort();
      throw e;
    }
  }

  /** What was stored: the archive, and the chunks of a deduplicated checkpoint (else null). */
  record Uploaded(ArchiveSummary archive, ChunkedImagesUpload.Stored chunks) {}

  /**
   * CRIU has exited successfully and the images are complete: archives (or chunks) the rest and commits.
   *
   * @return what was stored
   */
  Uploaded finish() throws IOException {
    imagesComplete = true;
    Uploaded summary;
    try {
      summary = following.get();
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof IOException io) {
        throw io;
      }
      throw new IOException("archiving the images failed: " + cause, cause);
    } catch (CancellationException e) {
      throw new InterruptedIOException("the upload was cut off");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while archiving the images");
    }
    upload.commit();
    committed = true;
    return summary;
  }

  /**
   * Stops archiving and storing chunks, from any thread (the agent stopping): {@link #finish} then
   * fails at once, and {@link #close} still waits for the follower to end and aborts the upload.
   */
  void cutOff() {
    following.cancel(true);
  }

  /** Unless committed: stops archiving and aborts the upload, so that nothing is stored. */
  @Override
  public void close() {
    if (committed) {
      return;
    }
    following.cancel(true); // interrupts a follower waiting for CRIU or for a free upload buffer
    try {
      follower.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    // The follower has ended (and closed its archive), so this thread is now the upload's only user.
    upload.abort();
  }

  private Uploaded follow() throws IOException, InterruptedException {
    CpuPriority.lowerCurrentThread(UPLOAD_NICE); // before zstd and the upload start threads of their own
    lowered.countDown();
    if (chunkedImages != null) {
      return followChunked();
    }
    try (OpenArchive archive = new ArchiveWriter().open(upload.stream(), codec, encryptWith)) {
      while (!imagesComplete) {
        if ((whileDumping == WhileDumping.WAIT || !archiveFullChunks(archive)) && !imagesComplete) {
          Thread.sleep(POLL_MILLIS);
        }
      }
      archiveFullChunks(archive);
      for (var file : chunked.entrySet()) {
        file.getValue().archiveRest(archive, file.getKey());
      }
      archive.addFilesOf(imagesDir, chunked::containsKey);
      ArchiveSummary summary = archive.finish();
      tarBytesArchived.accept(summary.sizeBytes());
      return new Uploaded(summary, null);
    }
  }

  /**
   * A deduplicated checkpoint: the pages files cut into chunks as CRIU writes them while the chunk
   * folder is listed beside (on a thread of its own: a large folder takes longer than a dump); the
   * rest archived once CRIU is done.
   */
  private Uploaded followChunked() throws IOException, InterruptedException {
    Thread listing = new Thread(() -> {
      try {
        chunkedImages.listStored();
      } catch (IOException e) {
        // kept by chunkedImages, whose store fails with it
      }
    }, follower.getName() + "-listing");
    listing.setDaemon(true);
    listing.start();
    ChunkedImagesUpload.Stored chunks = chunkedImages.store(imagesDir, () -> imagesComplete, tarBytesArchived);
    try (OpenArchive archive = new ArchiveWriter().open(upload.stream(), codec, encryptWith)) {
      archive.addFilesOf(imagesDir, chunks.images()::contains);
      ArchiveSummary summary = archive.finish();
      tarBytesArchived.accept(chunks.chunks().imagesBytes + summary.sizeBytes());
      return new Uploaded(summary, chunks);
    }
  }

  /** @return whether any chunk was archived */
  private boolean archiveFullChunks(OpenArchive archive) throws IOException {
    boolean archived = false;
    for (Path pages : pagesFiles()) {
      String name = pages.getFileName().toString();
      FollowedFile file = chunked.get(name);
      long size = Files.size(pages);
      long archivedBytes = file == null ? 0 : file.archivedBytes;
      while (size - archivedBytes >= chunkBytes) {
        if (file == null) {
          file = new FollowedFile(pages);
          chunked.put(name, file);
        }
        file.archive(archive, name, chunkBytes);
        tarBytesArchived.accept(archive.tarBytes());
        archivedBytes = file.archivedBytes;
        archived = true;
      }
    }
    return archived;
  }

  private List<Path> pagesFiles() throws IOException {
    List<Path> files = new ArrayList<>();
    try (DirectoryStream<Path> pages = Files.newDirectoryStream(imagesDir, "pages-*.img")) {
      pages.forEach(files::add);
    } catch (NoSuchFileException e) {
      // CRIU has not created the images folder yet
    }
    return files;
  }

  /** A pages file being archived chunk by chunk, and how far it got. */
  private final class FollowedFile {
    private final Path path;
    private long archivedBytes;
    private int chunks;

    FollowedFile(Path path) {
      this.path = path;
    }

    void archive(OpenArchive archive, String name, long length) throws IOException {
      archive.addChunk(name, chunks, path, archivedBytes, length);
      chunks++;
      archivedBytes += length;
    }

    void archiveRest(OpenArchive archive, String name) throws IOException {
      long rest = Files.size(path) - archivedBytes;
      if (rest > 0) {
        archive(archive, name, rest);
      }
    }
  }
}
