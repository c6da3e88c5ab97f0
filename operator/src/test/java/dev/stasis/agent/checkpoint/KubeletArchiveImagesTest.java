package dev.stasis.agent.checkpoint;

import static dev.stasis.criu.PagemapImages.PE_PRESENT;
import static dev.stasis.criu.PagemapImages.message;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.agent.restore.RebuiltKubeletArchive;
import dev.stasis.archive.ArchiveAuthenticationException;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.archive.dedup.TarSkeleton;
import dev.stasis.criu.PagemapImages;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.storage.ObjectStore;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A kubelet archive stored deduplicated the way a pod checkpoint stores it (its pages images as
 * chunks in packs, the rest as a tar skeleton) and put together the way a pod restore does.
 */
class KubeletArchiveImagesTest {
  private static final String NS = "team-a";
  private static final ChunkKey CHUNK_KEY = ChunkKey.of(new ArchiveKey("chunks-1", new byte[32]), NS);
  private static final int PAGE = 4096;
  private static final long ADDRESS_1 = 0x7f0000000000L;
  private static final long ADDRESS_2 = 0x400000L + 3 * PAGE;

  @TempDir
  Path dir;
  private ObjectStore store;

  @BeforeEach
  void openStore() {
    store = new FileSystemObjectStore(dir.resolve("bucket"));
  }

  @AfterEach
  void close() {
    store.close();
  }

  @Test
  void theTarPutTogetherFromSkeletonAndChunksIsTheKubeletsByteForByte() throws Exception {
    Path tar = kubeletTar("first.tar", memory(1, 96), memory(2, 9));

    Stored stored = store(tar, "first");

    assertThat(stored.holes()).extracting(TarSkeleton.Image::fileName).containsExactly("pages-1.img", "pages-2.img");
    assertThat(stored.chunks().chunks().imagesBytes).isEqualTo(105L * PAGE);
    assertThat(stored.skeleton().length).as("the skeleton holds the rest: no pages of the two images")
        .isLessThan((int) Files.size(tar) - 105 * PAGE + 200);
    assertThat(rebuild(stored)).isEqualTo(Files.readAllBytes(tar));
  }

  @Test
  void sealedChunksPutTogetherTheSameTar() throws Exception {
    Path tar = kubeletTar("first.tar", memory(1, 96), memory(2, 9));

    Stored stored = store(tar, "sealed", true);

    assertThat(stored.chunks().chunks().encryption).isNotEqualTo(Manifest.Encryption.NONE.algorithm);
    assertThat(rebuild(stored)).isEqualTo(Files.readAllBytes(tar));
  }

  @Test
  void aSecondArchiveOfTheSameMemoryStoresOnlyWhatChanged() throws Exception {
    byte[] pages = memory(1, 96);
    store(kubeletTar("first.tar", pages, memory(2, 9)), "first");
    pages[50 * PAGE] ^= 1; // one page rewritten: one 128 KiB block of the first image

    Path tar = kubeletTar("second.tar", pages, memory(2, 9));
    Stored second = store(tar, "second");

    assertThat(second.chunks().uploadedChunks()).isEqualTo(1);
    assertThat(second.chunks().newBytes()).isLessThan(2L * 128 * 1024);
    assertThat(rebuild(second)).isEqualTo(Files.readAllBytes(tar));
  }

  @Test
  void aChunkAlteredInItsPackFailsThePuttingTogether() throws Exception {
    Stored stored = store(kubeletTar("first.tar", memory(1, 96), memory(2, 9)), "first");
    try (Stream<Path> files = Files.walk(dir.resolve("bucket").resolve(NS).resolve(".packs"))) {
      for (Path pack : files.filter(f -> f.toString().endsWith(".pack")).toList()) {
        try (RandomAccessFile file = new RandomAccessFile(pack.toFile(), "rw")) {
          file.seek(file.length() / 2);
          int b = file.read();
          file.seek(file.length() / 2);
          file.write(b ^ 1);
        }
      }
    }

    assertThatThrownBy(() -> rebuild(stored)).isInstanceOf(ArchiveAuthenticationException.class)
        .hasMessageContaining("holds other bytes than its name says");
  }

  @Test
  void aSkeletonAlteredInStorageIsRefused() throws Exception {
    Stored stored = store(kubeletTar("first.tar", memory(1, 96), memory(2, 9)), "first");
    byte[] altered = stored.skeleton().clone();
    altered[altered.length - 600] ^= 1; // in the last literal: what follows the images

    assertThatThrownBy(() -> rebuild(stored, altered)).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("sha256");
  }

  @Test
  void pagesNoProcessPagemapNamesOrOfAnotherLengthStayInTheSkeleton() throws Exception {
    Path tar = dir.resolve("odd.tar");
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(Files.newOutputStream(tar))) {
      entry(out, "checkpoint/pagemap-1.img", PagemapImages.pagemap(message(1, 1),
          message(1, ADDRESS_1, 2, 4, 4, PE_PRESENT)));
      entry(out, "checkpoint/pages-1.img", memory(1, 5)); // a page more than the pagemap lists
      entry(out, "checkpoint/pages-7.img", memory(7, 2)); // shared memory's, say
    }

    Stored stored = store(tar, "odd");

    assertThat(stored.holes()).isEmpty();
    assertThat(rebuild(stored)).isEqualTo(Files.readAllBytes(tar));
  }

  private record Stored(List<TarSkeleton.Image> holes, ChunkedImagesUpload.Stored chunks, byte[] skeleton,
      String tarSha256) {}

  private Stored store(Path tar, String checkpoint) throws Exception {
    return store(tar, checkpoint, false);
  }

  /** As PodCheckpointJob stores a container's archive when its storage deduplicates (and encrypts). */
  private Stored store(Path tar, String checkpoint, boolean encrypt) throws Exception {
    ArchiveLayout layout = new ArchiveLayout(NS, checkpoint, "uid-" + checkpoint);
    try (FileChannel channel = FileChannel.open(tar)) {
      KubeletArchiveImages.Found found = KubeletArchiveImages.in(tar, channel);
      ChunkedImagesUpload upload = new ChunkedImagesUpload(store, layout, layout.containerChunkIndexKey("app"),
          CHUNK_KEY, encrypt, ArchiveCodec.ZSTD);
      upload.listStored();
      ChunkedImagesUpload.Stored chunks = upload.store(found.toCut(), cut -> {});
      return new Stored(found.holes(), chunks, TarSkeleton.split(channel, channel.size(), found.holes()).readAllBytes(),
          Sha256.hexOf(Files.readAllBytes(tar)));
    }
  }

  /** As PodRestoreJob puts the tar together: the skeleton stored as the archive object (uncompressed here). */
  private byte[] rebuild(Stored stored) throws Exception {
    return rebuild(stored, stored.skeleton());
  }

  /** With {@code storedSkeleton} in storage where the skeleton was recorded. */
  private byte[] rebuild(Stored stored, byte[] storedSkeleton) throws Exception {
    Manifest manifest = new Manifest();
    manifest.archive = new Manifest.Archive();
    manifest.archive.codec = ArchiveCodec.NONE;
    manifest.archive.tarSha256 = stored.tarSha256();
    manifest.chunked(stored.chunks().chunks());
    store.put("skeleton", storedSkeleton);
    RecordedManifest recorded = new RecordedManifest(manifest, "skeleton", new ArchiveIdentity(NS, "uid", "app"),
        new ArchiveSummary(0, stored.skeleton().length, Sha256.hexOf(stored.skeleton())));
    Path tar = dir.resolve("rebuilt.tar");
    RebuiltKubeletArchive.write(store, recorded, null, CHUNK_KEY, tar, fetched -> {});
    return Files.readAllBytes(tar);
  }

  /** As the kubelet writes one: the CRIU images under checkpoint/ among the runtime's files. */
  private Path kubeletTar(String name, byte[] pages1, byte[] pages2) throws IOException {
    Path tar = dir.resolve(name);
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(Files.newOutputStream(tar))) {
      out.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      entry(out, "config.dump", "{\"rootfsImageName\":\"registry/app:1\"}".getBytes(StandardCharsets.UTF_8));
      entry(out, "checkpoint/inventory.img", new byte[] {1, 2, 3});
      // Two runs that continue one another, then one elsewhere.
      entry(out, "checkpoint/pagemap-1.img", PagemapImages.pagemap(message(1, 1),
          message(1, ADDRESS_1, 2, 40, 4, PE_PRESENT), message(1, ADDRESS_1 + 40 * PAGE, 2, 40, 4, PE_PRESENT),
          message(1, ADDRESS_1 + (1L << 30), 2, pages1.length / PAGE - 80, 4, PE_PRESENT)));
      entry(out, "checkpoint/pages-1.img", pages1);
      entry(out, "checkpoint/pagemap-2.img", PagemapImages.pagemap(message(1, 2),
          message(1, ADDRESS_2, 2, pages2.length / PAGE, 4, PE_PRESENT)));
      entry(out, "checkpoint/pages-2.img", pages2);
      entry(out, "checkpoint/" + "long-".repeat(30) + ".img", new byte[700]);
      entry(out, "rootfs-diff.tar", new byte[2048]);
    }
    return tar;
  }

  private static byte[] memory(long seed, int pages) {
    byte[] bytes = new byte[pages * PAGE];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  private static void entry(TarArchiveOutputStream out, String name, byte[] data) throws IOException {
    TarArchiveEntry entry = new TarArchiveEntry(name);
    entry.setSize(data.length);
    out.putArchiveEntry(entry);
    out.write(data);
    out.closeArchiveEntry();
  }
}
