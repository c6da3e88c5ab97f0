package dev.stasis.agent.restore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.Manifest;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.storage.ObjectStore;
import dev.stasis.testing.DeduplicatedCheckpoints;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The restore's reads through a real store: what a later checkpoint's chunks, spread over packs, cost. */
class ChunkedImagesDownloadTest {
  private static final String NS = "jobs";

  @TempDir Path root;
  private ObjectStore store;
  private final List<byte[]> first = DeduplicatedCheckpoints.randomChunks(new Random(1), 16);
  private final Map<String, String> uids = new HashMap<>();

  @BeforeEach
  void storeTheFirstCheckpoint() throws IOException {
    store = new FileSystemObjectStore(root.resolve("storage"));
    DeduplicatedCheckpoints.writePacked(store, layout("first"), first, Map.of(), false);
  }

  @Test
  void aLaterCheckpointWhoseChunksHopBetweenPacksRestoresExactlyWithOneRequestPerPack() throws Exception {
    // Chunks 2, 3 and 9 rewritten (into a new pack), and chunk 0 needed once more at the end: read in
    // image order that was six requests (0-1, 2-3, 4-8, 9, 10-15, 0).
    List<byte[]> rewritten = DeduplicatedCheckpoints.randomChunks(new Random(2), 3);
    List<byte[]> second = new ArrayList<>(first);
    second.set(2, rewritten.get(0));
    second.set(3, rewritten.get(1));
    second.set(9, rewritten.get(2));
    second.add(first.get(0));
    ArchiveLayout later = layout("second");
    DeduplicatedCheckpoints.writePacked(store, later, second, DeduplicatedCheckpoints.storedAnywhere(store, NS), false);
    assertThat(DeduplicatedCheckpoints.packIds(store, NS)).hasSize(2);

    Path images = Files.createDirectories(root.resolve("images"));
    ChunkedImagesDownload.Written written = new ChunkedImagesDownload(store, recorded(later), DeduplicatedCheckpoints.KEY)
        .writeInto(images, bytes -> {});

    assertThat(Files.readAllBytes(images.resolve("pages-1.img"))).isEqualTo(concat(second));
    assertThat(written.requests()).as("the old pack read once across the 3 chunks it no longer needs, the new once")
        .isEqualTo(2);
    assertThat(written.chunks()).isEqualTo(17);
    assertThat(written.distinctChunks()).isEqualTo(16);
  }

  @Test
  void aPackThatEndsBeforeAChunkTheIndexPlacesInItFailsAsCorruptedNamingThePack() throws Exception {
    String packId = DeduplicatedCheckpoints.packIds(store, NS).iterator().next();
    String packKey = ArchiveLayout.packKey(NS, packId);
    byte[] pack = store.read(packKey);
    store.put(packKey, Arrays.copyOf(pack, pack.length - 100));

    Path images = Files.createDirectories(root.resolve("images"));
    assertThatThrownBy(() -> new ChunkedImagesDownload(store, recorded(layout("first")), DeduplicatedCheckpoints.KEY)
        .writeInto(images, bytes -> {}))
        .isInstanceOf(ArchiveIntegrityException.class).hasMessageContaining(store.uri(packKey));
  }

  private ArchiveLayout layout(String name) {
    return new ArchiveLayout(NS, name, uids.computeIfAbsent(name, n -> UUID.randomUUID().toString()));
  }

  private RecordedManifest recorded(ArchiveLayout layout) throws IOException {
    Manifest manifest = Manifest.fromJson(store.read(layout.manifestKey()));
    return new RecordedManifest(manifest, layout.archiveKey(ArchiveCodec.NONE),
        new ArchiveIdentity(NS, layout.checkpointUid(), ""), new ArchiveSummary(0, 0, ""));
  }

  private static byte[] concat(List<byte[]> chunks) {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    chunks.forEach(all::writeBytes);
    return all.toByteArray();
  }
}
