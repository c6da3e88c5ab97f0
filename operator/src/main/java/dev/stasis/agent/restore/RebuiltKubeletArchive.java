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
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * The kubelet's archive of a deduplicated pod checkpoint's container, put together in a file from
 * its tar skeleton (the archive object) and its pages images' chunks (docs/dedup.md, "Pod
 * checkpoints"): for the checkpoint image's layer ({@code PodRestoreJob}) and for {@code stasis
 * inspect}. The skeleton's literals are written at their places first and the skeleton object is
 * checked against its recorded size and sha256; then the chunks, each checked against its name, are
 * written at their images' places ({@link ChunkedImagesDownload}, positional writes in any order);
 * then the whole file against the manifest's {@code archive.tarSha256}. {@link #write} returns only
 * when all of that held.
 */
public final class RebuiltKubeletArchive {
  private RebuiltKubeletArchive() {}

  /** The tar's length, and what the chunks' download wrote. */
  public record Rebuilt(long tarBytes, ChunkedImagesDownload.Written written) {}

  /**
   * Puts the tar together in {@code tarFile} (created or overwritten) and checks it.
   *
   * @param decryptWith the container's archive key when the storage encrypts, else null
   */
  public static Rebuilt write(ObjectStore store, RecordedManifest recorded, BoundKey decryptWith, ChunkKey chunkKey,
      Path tarFile, LongConsumer fetched) throws IOException, InterruptedException {
    Manifest manifest = recorded.manifest();
    String container = recorded.identity().container();
    if (!manifest.isChunked() || manifest.archive.tarSha256 == null) {
      throw new ArchiveIntegrityException("the manifest of container " + container + " records no chunks or no"
          + " tarSha256: not a deduplicated pod checkpoint");
    }
    try (InputStream stored = store.open(recorded.archiveKey());
        FileChannel tar = FileChannel.open(tarFile, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      InputStream checked = new ExpectedBytesInputStream(stored, recorded.archive().sha256(),
          recorded.archive().storedBytes());
      TarSkeleton.Rebuild rebuild = new TarSkeleton.Rebuild(
          ArchiveReader.decoded(checked, manifest.archive.codec, decryptWith));
      List<TarSkeleton.Image> images = rebuild.layOut(tar);
      checked.transferTo(OutputStream.nullOutputStream()); // to its end: the skeleton's size and sha256 are checked there
      Iterator<TarSkeleton.Image> next = images.iterator();
      ChunkedImagesDownload.Written written = new ChunkedImagesDownload(store, recorded, chunkKey).writeTo(
          new ChunkedImagesDownload.ImageTargets() {
            @Override
            public ChunkedImagesDownload.ImageTarget open(String fileName) throws IOException {
              if (!next.hasNext()) {
                throw new ArchiveIntegrityException("the chunk index lists " + fileName + " but the tar skeleton has"
                    + " no image left");
              }
              TarSkeleton.Image image = next.next();
              if (!image.fileName().equals(fileName)) {
                throw new ArchiveIntegrityException("the tar skeleton's next image is " + image.fileName()
                    + ", the chunk index's " + fileName);
              }
              return new ChunkedImagesDownload.ImageTarget(tar, image.offset());
            }

            @Override
            public void close(ChunkedImagesDownload.ImageTarget target) {
              // the tar goes on
            }
          }, fetched);
      if (next.hasNext()) {
        throw new ArchiveIntegrityException("the tar skeleton has an image the chunk index does not list: "
            + next.next().fileName());
      }
      if (tar.size() != rebuild.tarBytes()) {
        throw new ArchiveIntegrityException("the tar of container " + container + " put together is " + tar.size()
            + " bytes, its skeleton says " + rebuild.tarBytes());
      }
      String actual = Sha256.hexOf(Channels.newInputStream(tar.position(0)));
      if (!actual.equalsIgnoreCase(manifest.archive.tarSha256)) {
        throw new ArchiveIntegrityException("the tar of container " + container + " put together from its skeleton"
            + " and chunks has sha256 " + actual + ", the manifest recorded " + manifest.archive.tarSha256);
      }
      return new Rebuilt(rebuild.tarBytes(), written);
    }
  }
}
