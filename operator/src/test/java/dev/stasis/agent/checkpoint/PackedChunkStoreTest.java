package dev.stasis.agent.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.ChunkObjects;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.storage.StoredObject;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PackedChunkStoreTest {
  private static final int PACK_BYTES = 1 << 20;
  private static final ChunkKey KEY = ChunkKey.of(new ArchiveKey("k1", new byte[32]), "sims");

  @TempDir
  Path root;
  FileSystemObjectStore store;
  ExecutorService threads = Executors.newFixedThreadPool(8);

  @BeforeEach
  void openStore() {
    store = new FileSystemObjectStore(root);
  }

  @AfterEach
  void stop() {
    threads.shutdownNow();
    store.close();
  }

  @Test
  void newChunksGoIntoAFewPacksEachFollowedByItsIndexAndRepeatsAreStoredOnce() throws Exception {
    List<byte[]> chunks = randomChunks(64, 1);
    List<byte[]> twice = new ArrayList<>(chunks);
    twice.addAll(chunks);

    List<ChunkIndex.ChunkRef> refs = storeAll(twice);

    List<StoredObject> packs = store.list(ArchiveLayout.packPrefix("sims"));
    // A stored incompressible chunk is a few bytes over 128 KiB, so 7 fit a 1 MiB pack: 10 packs and 10 indexes.
    assertThat(packs.stream().filter(p -> p.key().endsWith(".pack")))
        .hasSize(10).allSatisfy(pack -> assertThat(pack.sizeBytes()).isLessThanOrEqualTo(PACK_BYTES));
    assertThat(packs.stream().filter(p -> p.key().endsWith(".idx"))).hasSize(10);
    assertThat(store.list(ArchiveLayout.chunkPrefix("sims"))).as("no loose chunks any more").isEmpty();
    assertThat(refs).allSatisfy(ref -> assertThat(ref.location().loose()).isFalse());
    assertThat(refs.subList(0, 64)).containsExactlyElementsOf(refs.subList(64, 128));
    for (ChunkIndex.ChunkRef ref : refs.subList(0, 64)) {
      byte[] object = store.readRange(ArchiveLayout.packKey("sims", ref.location().packId()), ref.location().offset(),
          ref.storedBytes());
      assertThat(objects().open(ref.name(), object, ref.bytes())).isEqualTo(chunks.get(refs.indexOf(ref)));
    }
  }

  @Test
  void aLaterCheckpointFindsWhatEarlierOnesStoredLooseOrPackedAndStoresOnlyTheRest() throws Exception {
    List<byte[]> chunks = randomChunks(20, 2);
    storeAll(chunks.subList(0, 10));
    // one chunk stored loose, as checkpoints did before packs
    byte[] loose = chunks.get(10);
    String looseName = objects().name(loose, 0, loose.length);
    store.put(ArchiveLayout.chunkKey("sims", looseName), objects().object(looseName, loose, 0, loose.length));

    PackedChunkStore later = listed();
    List<ChunkIndex.ChunkRef> refs = storeAll(later, chunks);

    assertThat(later.newChunks()).isEqualTo(9);
    assertThat(later.distinctChunks()).isEqualTo(20);
    assertThat(refs.get(10).location().loose()).isTrue();
    assertThat(refs.subList(0, 10)).allSatisfy(ref -> assertThat(ref.location().loose()).isFalse());
    assertThat(later.untrusted()).isEmpty();
  }

  @Test
  void aPackIndexThatIsNotAuthenticIsNotUsedItsChunksAreStoredAgainAndItIsNamed() throws Exception {
    List<byte[]> chunks = randomChunks(4, 3);
    storeAll(chunks);
    StoredObject index = store.list(ArchiveLayout.packPrefix("sims")).stream()
        .filter(o -> o.key().endsWith(".idx")).findFirst().orElseThrow();
    byte[] altered = store.read(index.key());
    altered[altered.length - 40] ^= 1;
    store.put(index.key(), altered);

    PackedChunkStore later = listed();
    storeAll(later, chunks);

    assertThat(later.newChunks()).isEqualTo(4);
    assertThat(later.untrusted()).singleElement().satisfies(untrusted -> {
      assertThat(untrusted.uri()).endsWith(index.key());
      assertThat(untrusted.reason()).contains("not authentic");
    });
  }

  @Test
  void indexesOfAnotherKeyAreSkippedWithoutAWarning() throws Exception {
    List<byte[]> chunks = randomChunks(4, 4);
    storeAll(chunks);
    ChunkKey rotated = ChunkKey.of(new ArchiveKey("k2", new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}), "sims");
    PackedChunkStore later = new PackedChunkStore(store, "sims", rotated, PACK_BYTES);
    later.list();
    assertThat(later.untrusted()).isEmpty();
    assertThat(PackIndex.keyIdOf(store.read(store.list(ArchiveLayout.packPrefix("sims")).stream()
        .filter(o -> o.key().endsWith(".idx")).findFirst().orElseThrow().key()))).isEqualTo("k1");
    later.close();
  }

  private PackedChunkStore listed() throws Exception {
    PackedChunkStore chunks = new PackedChunkStore(store, "sims", KEY, PACK_BYTES);
    chunks.list();
    return chunks;
  }

  private List<ChunkIndex.ChunkRef> storeAll(List<byte[]> chunks) throws Exception {
    PackedChunkStore packed = listed();
    return storeAll(packed, chunks);
  }

  /** From 8 threads at once, as the upload does; the references in the chunks' order. */
  private List<ChunkIndex.ChunkRef> storeAll(PackedChunkStore packed, List<byte[]> chunks) throws Exception {
    ThreadLocal<ChunkObjects> objects = ThreadLocal.withInitial(this::objects);
    List<Future<ChunkIndex.ChunkRef>> stored = new ArrayList<>();
    for (byte[] chunk : chunks) {
      stored.add(threads.submit(() -> packed.store(objects.get(), chunk)));
    }
    List<ChunkIndex.ChunkRef> refs = new ArrayList<>();
    for (Future<ChunkIndex.ChunkRef> ref : stored) {
      refs.add(ref.get());
    }
    packed.finish();
    packed.close();
    return refs;
  }

  private ChunkObjects objects() {
    return ChunkObjects.forNamespace(KEY, "sims", false, true);
  }

  private static List<byte[]> randomChunks(int count, long seed) {
    Random random = new Random(seed);
    List<byte[]> chunks = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      byte[] chunk = new byte[128 << 10];
      random.nextBytes(chunk);
      chunks.add(chunk);
    }
    return chunks;
  }
}
