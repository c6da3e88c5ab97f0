package dev.stasis.agent.restore;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveReader;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.ExpectedBytesInputStream;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.archive.dedup.TarSkeleton;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.storage.ObjectStore;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.function.LongConsumer;

/**
 * The kubelet's archive of a deduplicated pod checkpoint's container, put together from its tar
 * skeleton (the archive object) and its pages images' chunks (docs/dedup.md, "Pod checkpoints"):
 * for the checkpoint image's layer ({@code PodRestoreJob}) and for {@code stasis inspect}.
 * {@link #writeTo} returns only when every byte it wrote is the tar the manifest recorded.
 */
public final class RebuiltKubeletArchive implements AutoCloseable {
  private final ObjectStore store;
  private final RecordedManifest recorded;
  private final ChunkKey chunkKey;
  private final InputStream stored;
  private final InputStream checked;
  private final TarSkeleton.Rebuild rebuild;
  /** Where {@link #rebuild} writes: set by {@link #writeTo}. */
  private OutputStream target = OutputStream.nullOutputStream();

  /**
   * Opens the skeleton and reads its head (the tar's length); nothing is trusted before {@link #writeTo}
   * finished.
   *
   * @param decryptWith the container's archive key when the storage encrypts, else null
   */
  public RebuiltKubeletArchive(ObjectStore store, RecordedManifest recorded, BoundKey decryptWith, ChunkKey chunkKey)
      throws IOException {
    this.store = store;
    this.recorded = recorded;
    this.chunkKey = chunkKey;
    Manifest manifest = recorded.manifest();
    if (!manifest.isChunked() || manifest.archive.tarSha256 == null) {
      throw new ArchiveIntegrityException("the manifest of container " + recorded.identity().container()
          + " records no chunks or no tarSha256: not a deduplicated pod checkpoint");
    }
    this.stored = store.open(recorded.archiveKey());
    try {
      this.checked = new ExpectedBytesInputStream(stored, recorded.archive().sha256(), recorded.archive().storedBytes());
      this.rebuild = new TarSkeleton.Rebuild(ArchiveReader.decoded(checked, manifest.archive.codec, decryptWith),
          new OutputStream() {
            @Override
            public void write(int b) throws IOException {
              target.write(b);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
              target.write(b, off, len);
            }
          });
    } catch (IOException | RuntimeException e) {
      stored.close();
      throw e;
    }
  }

  /** The tar's length, as its skeleton says (checked by {@link #writeTo}). */
  public long tarBytes() {
    return rebuild.tarBytes();
  }

  /**
   * Writes the tar to {@code out} (left open), its images from chunks each checked against its
   * name; then checks the skeleton object against its recorded size and sha256 and the tar against
   * the manifest's {@code archive.tarSha256}, and throws if either differs.
   */
  public ChunkedImagesDownload.Written writeTo(OutputStream out, LongConsumer fetched)
      throws IOException, InterruptedException {
    MessageDigest sha256 = Sha256.newDigest();
    target = new DigestOutputStream(out, sha256);
    ChunkedImagesDownload.Written written = new ChunkedImagesDownload(store, recorded, chunkKey)
        .writeTo(rebuild::image, fetched);
    rebuild.finish(); // the tar is then as long as the skeleton says
    checked.transferTo(OutputStream.nullOutputStream()); // to its end: the skeleton's size and sha256 are checked there
    String actual = Sha256.hex(sha256.digest());
    String tarSha256 = recorded.manifest().archive.tarSha256;
    if (!actual.equalsIgnoreCase(tarSha256)) {
      throw new ArchiveIntegrityException("the tar of container " + recorded.identity().container() + " put together"
          + " from its skeleton and chunks has sha256 " + actual + ", the manifest recorded " + tarSha256);
    }
    return written;
  }

  @Override
  public void close() throws IOException {
    stored.close();
  }
}
