package dev.stasis.operator.retention;

import static dev.stasis.api.CheckpointStorageSpec.DEFAULT_MAX_UNUSED_PERCENT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.operator.retention.ChunkSweepLock.InFlight;
import dev.stasis.operator.retention.ChunkSweepLock.Scope;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.S3ObjectStore;
import dev.stasis.testing.DeduplicatedCheckpoints;
import dev.stasis.testing.DeduplicatedCheckpoints.Written;
import dev.stasis.testing.S3Server;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * Collection of chunks by reference, on the real object stores (a directory and s3proxy): the
 * mark reads the chunk index of every manifest of a namespace, the sweep deletes loose chunks and
 * packs no index lists once they are older than the grace period, repacks packs less than half
 * referenced and then the most wasteful ones while unused bytes exceed 10% of the live ones, and a manifest, chunk index or pack index that cannot be trusted stops the sweep of
 * its namespace.
 */
class ChunkCollectionTest {
  static final String THIS_CLUSTER = "0e9c2f3a-this-cluster";
  static final Duration GRACE = Duration.ofHours(1);
  static final String STORAGE = "store";
  static final String NS = "jobs";

  @TempDir Path root;
  final ChunkSweepLock lock = new ChunkSweepLock();
  /** What the API server would list as the namespace's Checkpoints not yet Completed or Failed. */
  final List<InFlight> inFlight = new CopyOnWriteArrayList<>();
  /** Whether the packs' chunks are sealed (the storage encrypts); loose chunks are never opened. */
  boolean sealed;

  @Test
  void fileSystem() throws Exception {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      keepsWhatManifestsReferToAndRemovesTheRest(store);
    }
  }

  @Test
  void s3() throws Exception {
    try (S3Server server = S3Server.start()) {
      server.createBucket("checkpoints");
      try (ObjectStore store = s3Store(server)) {
        keepsWhatManifestsReferToAndRemovesTheRest(store);
      }
    }
  }

  @Test
  void anUntrustworthyIndexOrManifestStopsItsNamespacesSweepOnAFileSystem() throws Exception {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      untrustworthyReferencesStopTheSweep(store);
    }
  }

  @Test
  void anUntrustworthyIndexOrManifestStopsItsNamespacesSweepOnS3() throws Exception {
    try (S3Server server = S3Server.start()) {
      server.createBucket("checkpoints");
      try (ObjectStore store = s3Store(server)) {
        untrustworthyReferencesStopTheSweep(store);
      }
    }
  }

  @Test
  void packsOnAFileSystem() throws Exception {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      deletesDeadPacksRepacksMostlyDeadOnesAndKeepsTheRest(store, false);
    }
  }

  @Test
  void sealedPacksOnS3() throws Exception {
    try (S3Server server = S3Server.start()) {
      server.createBucket("checkpoints");
      try (ObjectStore store = s3Store(server)) {
        sealed = true;
        deletesDeadPacksRepacksMostlyDeadOnesAndKeepsTheRest(store, true);
      }
    }
  }

  @Test
  void aTamperedPackIndexStopsItsNamespacesSweepOnAFileSystem() throws Exception {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      tamperedPackIndexStopsTheSweep(store);
    }
  }

  @Test
  void aTamperedPackIndexStopsItsNamespacesSweepOnS3() throws Exception {
    try (S3Server server = S3Server.start()) {
      server.createBucket("checkpoints");
      try (ObjectStore store = s3Store(server)) {
        tamperedPackIndexStopsTheSweep(store);
      }
    }
  }

  /**
   * Three checkpoints in packs: "first" (pack A, 8 chunks), "second" (pack B, 8 chunks) and "third"
   * (2 of A's chunks, and its own 6 in pack C); a pack whose writer died before its index; then
   * "first" and "second" are deleted. After the grace period B and the orphan go, A (2 of 8 chunks
   * still referenced) is repacked into a pack of exactly those 2, C stays; every chunk of "third"
   * reads back byte for byte by its name, though its chunk index still points into A. Within the
   * grace period nothing goes.
   */
  private void deletesDeadPacksRepacksMostlyDeadOnesAndKeepsTheRest(ObjectStore store, boolean sealed)
      throws Exception {
    Random random = new Random(18);
    List<byte[]> a = DeduplicatedCheckpoints.randomChunks(random, 8);
    List<byte[]> b = DeduplicatedCheckpoints.randomChunks(random, 8);
    List<byte[]> c = DeduplicatedCheckpoints.randomChunks(random, 6);
    Written first = writePacked(store, "first", "11111111-1111-1111-1111-111111111111", a, sealed);
    String packA = onlyNewPack(store, Set.of());
    Written second = writePacked(store, "second", "22222222-2222-2222-2222-222222222222", b, sealed);
    String packB = onlyNewPack(store, Set.of(packA));
    List<byte[]> thirdChunks = new ArrayList<>(List.of(a.get(2), a.get(5)));
    thirdChunks.addAll(c);
    Written third = writePacked(store, "third", "33333333-3333-3333-3333-333333333333", thirdChunks, sealed);
    String packC = onlyNewPack(store, Set.of(packA, packB));
    String orphan = "0f" + "e".repeat(30);
    store.put(ArchiveLayout.packKey(NS, orphan), "chunks of a writer that died before the index".getBytes(
        StandardCharsets.UTF_8));
    StorageGarbageCollector.deleteCheckpoint(store, first.layout());
    StorageGarbageCollector.deleteCheckpoint(store, second.layout());
    Predicate<ArchiveLayout> exists = l -> l.equals(third.layout());

    var young = collect(store, exists, Instant.now().plus(Duration.ofMinutes(50)));
    assertThat(young.chunks().packs()).isEqualTo(StorageGarbageCollector.Packs.NONE);
    assertThat(DeduplicatedCheckpoints.packIds(store, NS)).containsExactlyInAnyOrder(packA, packB, packC, orphan);

    var collected = collect(store, exists, Instant.now().plus(Duration.ofMinutes(70)));
    assertThat(collected.chunks().stopped()).isEmpty();
    assertThat(collected.chunks().packs().deleted()).as("B, and the orphan").isEqualTo(2);
    assertThat(collected.chunks().packs().repacked()).as("A").isEqualTo(1);
    assertThat(collected.chunks().packs().written()).isEqualTo(1);
    Set<String> packs = DeduplicatedCheckpoints.packIds(store, NS);
    assertThat(packs).hasSize(2).contains(packC).doesNotContain(packA, packB, orphan);
    assertThat(store.list(ArchiveLayout.packPrefix(NS))).as("every pack kept has its index").hasSize(4);
    PackIndex repacked = DeduplicatedCheckpoints.packIndexes(store, NS).stream()
        .filter(i -> !i.packId().equals(packC)).findFirst().orElseThrow();
    assertThat(repacked.entries().stream().map(PackIndex.Entry::name))
        .containsExactlyInAnyOrder(third.chunks().get(0), third.chunks().get(1));
    assertThat(store.read(ArchiveLayout.packKey(NS, repacked.packId())).length).as("nothing but those two")
        .isEqualTo(repacked.packBytes());

    List<ChunkIndex.ChunkRef> hints = new ArrayList<>();
    try (var in = store.open(third.layout().chunkIndexKey())) {
      ChunkIndex.read(in, (image, chunk) -> hints.add(chunk));
    }
    assertThat(hints.get(0).location().packId()).as("the hint still names the pack repacked").isEqualTo(packA);
    for (int i = 0; i < thirdChunks.size(); i++) {
      assertThat(DeduplicatedCheckpoints.readChunk(store, NS, third.chunks().get(i), thirdChunks.get(i).length, sealed))
          .as("chunk %d of the kept checkpoint, by its name", i).isEqualTo(thirdChunks.get(i));
    }

    long objects = store.list("").stream().filter(o -> o.key().startsWith(NS + "/")).mapToLong(o -> o.sizeBytes()).sum();
    assertThat(collected.usage().storedBytes()).isEqualTo(objects);
    assertThat(collected.usage().chunks()).isEqualTo(8);
    assertThat(collected.usage().referencedBytes()).isEqualTo(third.imageBytes() + third.archiveBytes());

    var again = collect(store, exists, Instant.now().plus(Duration.ofMinutes(70)));
    assertThat(again.chunks().packs()).as("all that is left is referenced").isEqualTo(StorageGarbageCollector.Packs.NONE);
    assertThat(DeduplicatedCheckpoints.packIds(store, NS)).isEqualTo(packs);
  }

  /**
   * A schedule with keepLast 5 of a 64 MiB process whose memory does not compress: 10 checkpoints
   * with 5% of the memory (26 of its 128 KiB chunks, in blocks of 1 MiB and one of 256 KiB)
   * rewritten between each, the first 5 deleted, then a collection. The packs left hold at most
   * {@code maxUnusedPercent} (the storage's setting; 10 by default) more than the distinct chunks
   * the 5 kept checkpoints refer to (none is younger than the grace period); what the collection
   * rewrote is printed.
   */
  @ParameterizedTest(name = "maxUnusedPercent {0}")
  @ValueSource(ints = {0, DEFAULT_MAX_UNUSED_PERCENT, 50})
  void aKeepLastFiveSeriesKeepsLittleMoreThanWhatItsCheckpointsReferTo(int maxUnusedPercent) throws Exception {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      int chunkBytes = 128 << 10;
      Random random = new Random(5);
      List<byte[]> memory = DeduplicatedCheckpoints.randomChunks(random, 512, chunkBytes);
      List<Written> series = new ArrayList<>();
      for (int n = 0; n < 10; n++) {
        if (n > 0) {
          for (int block : List.of(8, 8, 8, 2)) {
            int at = random.nextInt(memory.size() / block) * block;
            for (int i = at; i < at + block; i++) {
              memory.set(i, DeduplicatedCheckpoints.randomChunks(random, 1, chunkBytes).get(0));
            }
          }
        }
        series.add(writePacked(store, "sim-" + n, "00000000-0000-0000-0000-00000000000" + n, memory, false));
      }
      long beforeDeletion = packedBytes(store);
      Set<String> packsBefore = DeduplicatedCheckpoints.packIds(store, NS);
      for (Written deleted : series.subList(0, 5)) {
        StorageGarbageCollector.deleteCheckpoint(store, deleted.layout());
      }
      Set<ArchiveLayout> kept = new HashSet<>();
      series.subList(5, 10).forEach(w -> kept.add(w.layout()));
      var collected = collect(store, kept::contains, maxUnusedPercent, Instant.now().plus(Duration.ofHours(2)));
      Set<String> referenced = new HashSet<>();
      series.subList(5, 10).forEach(w -> referenced.addAll(w.chunks()));
      long oneCopy = 512L * chunkBytes;
      long referencedStored = referenced.size() * (chunkBytes + 1L); // each stored raw: one byte more
      long stored = packedBytes(store);
      long packs = 0;
      long rewritten = 0;
      for (var object : store.list(ArchiveLayout.packPrefix(NS))) {
        var pack = ArchiveLayout.ofPackKey(object.key()).orElseThrow();
        if (!pack.index()) {
          packs += object.sizeBytes();
          rewritten += packsBefore.contains(pack.packId()) ? 0 : object.sizeBytes();
        }
      }
      System.out.printf("maxUnusedPercent %d: keepLast 5 of 10 checkpoints of 64 MiB, 5%% rewritten between: packs"
          + " and indexes %d bytes"
          + " before deletion (%.2f copies), %d after the collection (%.2f copies; %d packs deleted, %d repacked,"
          + " %d bytes rewritten = %.2f copies); the 5 kept refer to %d distinct chunks, %d bytes (%.2f copies);"
          + " storage usage %d bytes%n",
          maxUnusedPercent, beforeDeletion, beforeDeletion / (double) oneCopy, stored, stored / (double) oneCopy,
          collected.chunks().packs().deleted(), collected.chunks().packs().repacked(), rewritten,
          rewritten / (double) oneCopy, referenced.size(), referencedStored, referencedStored / (double) oneCopy,
          collected.usage().storedBytes());
      assertThat(collected.chunks().stopped()).isEmpty();
      assertThat(packs).as("pack bytes against the referenced chunks' bytes")
          .isBetween(referencedStored, referencedStored * (100 + maxUnusedPercent) / 100);
      assertThat(collected.usage().chunks()).isGreaterThanOrEqualTo(referenced.size());
      for (Written w : series.subList(5, 10)) {
        assertThat(store.exists(w.layout().manifestKey())).isTrue();
      }
      int last = 9;
      for (int i = 0; i < memory.size(); i += 97) {
        assertThat(DeduplicatedCheckpoints.readChunk(store, NS, series.get(last).chunks().get(i), chunkBytes, false))
            .isEqualTo(memory.get(i));
      }
    }
  }

  /** The bytes of the namespace's packs and pack indexes. */
  private static long packedBytes(ObjectStore store) throws IOException {
    return store.list(ArchiveLayout.packPrefix(NS)).stream().mapToLong(o -> o.sizeBytes()).sum();
  }

  /**
   * A pack index whose HMAC fails: nothing of its namespace goes (not even a dead pack), the
   * result names the index and what to do; once it is put back, the sweep goes on.
   */
  private void tamperedPackIndexStopsTheSweep(ObjectStore store) throws Exception {
    Random random = new Random(7);
    Written dead = writePacked(store, "dead", "11111111-1111-1111-1111-111111111111", DeduplicatedCheckpoints.randomChunks(random, 3), false);
    String deadPack = onlyNewPack(store, Set.of());
    writePacked(store, "kept", "22222222-2222-2222-2222-222222222222", DeduplicatedCheckpoints.randomChunks(random, 3), false);
    String keptPack = onlyNewPack(store, Set.of(deadPack));
    StorageGarbageCollector.deleteCheckpoint(store, dead.layout());
    Instant later = Instant.now().plus(Duration.ofHours(2));
    String indexKey = ArchiveLayout.packIndexKey(NS, keptPack);
    byte[] index = store.read(indexKey);
    byte[] altered = index.clone();
    altered[altered.length - 40] ^= 1; // inside the last entry: still well formed, but not what was MACed
    store.put(indexKey, altered);

    var stopped = collect(store, l -> true, later);
    assertThat(stopped.chunks().stopped()).containsOnlyKeys(NS);
    assertThat(stopped.chunks().stopped().get(NS)).contains(store.uri(indexKey)).contains("not authentic")
        .contains("Put it back");
    assertThat(stopped.chunks().packs()).isEqualTo(StorageGarbageCollector.Packs.NONE);
    assertThat(DeduplicatedCheckpoints.packIds(store, NS)).containsExactlyInAnyOrder(deadPack, keptPack);

    store.put(indexKey, index);
    var repaired = collect(store, l -> true, later);
    assertThat(repaired.chunks().stopped()).isEmpty();
    assertThat(repaired.chunks().packs().deleted()).isEqualTo(1);
    assertThat(DeduplicatedCheckpoints.packIds(store, NS)).containsExactly(keptPack);
  }

  @Test
  void anAbandonedChunkUploadGoesOnceOlderThanTheGracePeriodOnAFileSystem() throws Exception {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      removesAbandonedChunkUploads(store);
    }
  }

  @Test
  void anAbandonedChunkUploadGoesOnceOlderThanTheGracePeriodOnS3() throws Exception {
    try (S3Server server = S3Server.start()) {
      server.createBucket("checkpoints");
      try (ObjectStore store = s3Store(server)) {
        removesAbandonedChunkUploads(store);
      }
    }
  }

  /**
   * An agent that died while it uploaded a chunk leaves an unfinished upload (a partial file, an S3
   * multipart upload) that no checkpoint owns: the collector removes it once older than the grace
   * period, and leaves the committed chunk of the same name alone.
   */
  private void removesAbandonedChunkUploads(ObjectStore store) throws Exception {
    byte[] kept = chunk("kept");
    Written checkpoint = write(store, "first", "11111111-1111-1111-1111-111111111111", List.of(kept));
    String abandonedKey = ArchiveLayout.chunkKey(NS, name(chunk("never finished")));
    var abandoned = store.upload(abandonedKey);
    abandoned.stream().write(new byte[S3ObjectStore.MIN_PART_SIZE + 1]);
    abandoned.stream().flush();
    var sameNameAsKept = store.upload(ArchiveLayout.chunkKey(NS, name(kept)));
    sameNameAsKept.stream().write(new byte[S3ObjectStore.MIN_PART_SIZE + 1]);
    sameNameAsKept.stream().flush();
    Predicate<ArchiveLayout> exists = l -> l.equals(checkpoint.layout());

    var young = collect(store, exists, Instant.now().plus(Duration.ofMinutes(50)));
    assertThat(young.chunks().abandonedUploads()).as("within the grace period it may still be written").isZero();
    assertThat(store.listUnfinished(NS + "/")).hasSize(2);

    var collected = collect(store, exists, Instant.now().plus(Duration.ofMinutes(70)));
    assertThat(collected.chunks().abandonedUploads()).isEqualTo(2);
    assertThat(collected.isEmpty()).isFalse();
    assertThat(store.listUnfinished("")).isEmpty();
    assertThat(stored(store)).containsExactly(name(kept));
    assertThatThrownBy(abandoned::commit).as("an upload collected as garbage cannot commit any more")
        .isInstanceOf(IOException.class);
    assertThat(store.exists(abandonedKey)).isFalse();
    sameNameAsKept.abort();
  }

  /**
   * Two checkpoints sharing chunks, a deleted one (its prefix not yet collected, then collected), a
   * retained one, chunks of a checkpoint that failed before its manifest, and a young unreferenced
   * chunk: each chunk goes exactly when no manifest refers to it and it is older than the grace period.
   */
  private void keepsWhatManifestsReferToAndRemovesTheRest(ObjectStore store) throws Exception {
    byte[] a = chunk("a");
    byte[] b = chunk("b");
    byte[] c = chunk("c");
    byte[] d = chunk("d");
    byte[] failed = chunk("of a checkpoint that failed before its manifest");
    Written first = write(store, "first", "11111111-1111-1111-1111-111111111111", List.of(a, b));
    Written second = write(store, "second", "22222222-2222-2222-2222-222222222222", List.of(a, c));
    Written deleted = write(store, "deleted", "33333333-3333-3333-3333-333333333333", List.of(d, b));
    Written retained = write(store, "retained", "44444444-4444-4444-4444-444444444444", List.of(chunk("kept")));
    store.put(retained.layout().retainedMarkerKey(), "kept on purpose".getBytes(StandardCharsets.UTF_8));
    store.put(ArchiveLayout.chunkKey(NS, name(failed)), failed);
    Set<String> existing = Set.of(first.layout().checkpointUid(), second.layout().checkpointUid());
    Predicate<ArchiveLayout> exists = l -> existing.contains(l.checkpointUid());

    var young = collect(store, exists, Instant.now().plus(Duration.ofMinutes(50)));
    assertThat(young.chunks().deleted()).as("within the grace period nothing goes").isZero();
    assertThat(young.usage().chunks()).isEqualTo(6);

    var collected = collect(store, exists, Instant.now().plus(Duration.ofMinutes(70)));
    assertThat(collected.prefixes()).containsExactly(deleted.layout().prefix());
    assertThat(stored(store)).as("the failed checkpoint's chunk goes; d goes with or after the deleted manifest")
        .contains(name(a), name(b), name(c), name(chunk("kept"))).doesNotContain(name(failed));

    var next = collect(store, exists, Instant.now().plus(Duration.ofMinutes(70)));
    assertThat(collected.chunks().deleted() + next.chunks().deleted()).isEqualTo(2);
    assertThat(stored(store)).containsExactlyInAnyOrder(name(a), name(b), name(c), name(chunk("kept")));

    byte[] uploadedJustNow = chunk("uploaded by a checkpoint a minute ago");
    store.put(ArchiveLayout.chunkKey(NS, name(uploadedJustNow)), uploadedJustNow);
    var later = collect(store, exists, Instant.now().plus(Duration.ofMinutes(59)));
    assertThat(later.chunks().deleted()).isZero();
    assertThat(stored(store)).contains(name(uploadedJustNow));

    // what the storage holds: 5 chunks of 1000 bytes, 3 archives, indexes and manifests
    long objects = store.list("").stream().filter(o -> o.key().startsWith(NS + "/")).mapToLong(o -> o.sizeBytes()).sum();
    assertThat(later.usage().storedBytes()).isEqualTo(objects);
    assertThat(later.usage().chunks()).isEqualTo(5);
    assertThat(later.usage().manifests()).isEqualTo(3);
    assertThat(later.usage().referencedBytes()).isEqualTo(first.imageBytes() + first.archiveBytes()
        + second.imageBytes() + second.archiveBytes() + retained.imageBytes() + retained.archiveBytes());
  }

  /**
   * An altered index, a missing one, a manifest that does not parse: the namespace keeps every
   * chunk and says why; another namespace's sweep goes on in the same pass.
   */
  private void untrustworthyReferencesStopTheSweep(ObjectStore store) throws Exception {
    String other = "other";
    byte[] orphanHere = chunk("unreferenced in " + NS);
    byte[] orphanThere = chunk("unreferenced in " + other);
    Written written = write(store, "sim", "11111111-1111-1111-1111-111111111111", List.of(chunk("x"), chunk("y")));
    store.put(ArchiveLayout.chunkKey(NS, name(orphanHere)), orphanHere);
    store.put(ArchiveLayout.chunkKey(other, DeduplicatedCheckpoints.name(other, orphanThere)), orphanThere);
    Predicate<ArchiveLayout> exists = l -> true;
    Instant later = Instant.now().plus(Duration.ofHours(2));
    byte[] index = store.read(written.layout().chunkIndexKey());

    byte[] altered = index.clone();
    altered[30] ^= 1; // a bit of the first chunk's name: still a well-formed index, but not the one the manifest records
    store.put(written.layout().chunkIndexKey(), altered);
    var stopped = collect(store, exists, later);
    assertThat(stopped.chunks().stopped()).containsOnlyKeys(NS);
    assertThat(stopped.chunks().stopped().get(NS)).contains(written.layout().chunkIndexKey())
        .contains("it was altered or replaced");
    assertThat(stored(store)).hasSize(3);
    assertThat(stopped.chunks().deleted()).as("the other namespace's unreferenced chunk").isEqualTo(1);

    store.put(written.layout().chunkIndexKey(), Arrays.copyOf(index, index.length - 3));
    assertThat(collect(store, exists, later).chunks().stopped().get(NS)).as("a truncated index")
        .contains("the chunk index is truncated");

    store.deleteAll(written.layout().chunkIndexKey());
    assertThat(collect(store, exists, later).chunks().stopped().get(NS)).contains("which is missing");

    store.put(written.layout().chunkIndexKey(), index);
    store.put(written.layout().manifestKey(),
        "{\"format\": \"stasis.dev/manifest/v2\"".getBytes(StandardCharsets.UTF_8));
    assertThat(collect(store, exists, later).chunks().stopped().get(NS)).contains("cannot be read");
    assertThat(stored(store)).as("nothing of the namespace went while it could not be marked").hasSize(3);

    Manifest manifest = DeduplicatedCheckpoints.manifest(written.layout(), store.read(written.layout()
        .archiveKey(ArchiveCodec.NONE)), DeduplicatedCheckpoints.chunks(written.layout(), index, written.imageBytes()));
    store.put(written.layout().manifestKey(), manifest.toJson());
    var repaired = collect(store, exists, later);
    assertThat(repaired.chunks().stopped()).isEmpty();
    assertThat(repaired.chunks().deleted()).isEqualTo(1);
    assertThat(stored(store)).containsExactlyInAnyOrderElementsOf(written.chunks());
  }

  /**
   * The race the lock closes, step by step: a checkpoint lists the namespace's chunks, finds one
   * that no manifest refers to any more and will refer to it without uploading it. While it is in
   * flight, no sweep starts; once its manifest is written, the chunk is marked.
   */
  @Test
  void aChunkFoundPresentByACheckpointInFlightIsNotSwept() throws Exception {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      byte[] shared = chunk("shared");
      Written old = write(store, "old", "11111111-1111-1111-1111-111111111111", List.of(shared));
      store.deleteAll(old.layout().prefix()); // its Checkpoint deleted: the chunk is unreferenced now
      Instant later = Instant.now().plus(Duration.ofHours(2));

      String uid = "22222222-2222-2222-2222-222222222222";
      inFlight.add(new InFlight(uid, "new", null)); // created, Pending
      assertThat(lock.grant(new Scope(STORAGE, NS), uid)).isTrue();
      Set<String> listed = DeduplicatedCheckpoints.storedChunks(store, NS);
      assertThat(listed).contains(name(shared));

      var whileInFlight = collect(store, l -> true, later);
      assertThat(whileInFlight.chunks().waited()).containsEntry(NS, List.of("new"));
      assertThat(stored(store)).contains(name(shared));

      write(store, "new", uid, List.of(shared, chunk("fresh")), listed);
      inFlight.clear(); // Completed
      var after = collect(store, l -> true, later);
      assertThat(after.chunks().waited()).isEmpty();
      assertThat(after.chunks().deleted()).isZero();
      assertThat(stored(store)).contains(name(shared));
    }
  }

  /** While a sweep holds a namespace's lock, its Checkpoints get no chunk key; others' do. */
  @Test
  void noChunkKeyIsGrantedWhileTheNamespaceIsSwept() {
    var attempt = lock.tryHold(new Scope(STORAGE, NS), List::of);
    assertThat(attempt).isInstanceOf(ChunkSweepLock.Held.class);
    assertThat(lock.grant(new Scope(STORAGE, NS), "a")).isFalse();
    assertThat(lock.grant(new Scope(STORAGE, "other"), "b")).isTrue();
    assertThat(lock.grant(new Scope("another-store", NS), "c")).isTrue();
    assertThat(lock.tryHold(new Scope(STORAGE, NS), List::of)).as("one sweep at a time")
        .isInstanceOf(ChunkSweepLock.Busy.class);
    ((ChunkSweepLock.Held) attempt).close();
    assertThat(lock.grant(new Scope(STORAGE, NS), "a")).isTrue();
    assertThat(lock.tryHold(new Scope(STORAGE, NS), () -> List.of(new InFlight("a", "ckpt-a", null))))
        .as("granted here and not yet ended by the API server's listing")
        .isEqualTo(new ChunkSweepLock.Busy(List.of("ckpt-a")));
    assertThat(lock.tryHold(new Scope(STORAGE, NS), () -> List.of(new InFlight("z", "ckpt-z", STORAGE))))
        .as("granted by an operator before a restart: assigned to this storage")
        .isEqualTo(new ChunkSweepLock.Busy(List.of("ckpt-z")));
    var heldAgain = lock.tryHold(new Scope(STORAGE, NS), () -> List.of(new InFlight("y", "ckpt-y", "another-store")));
    assertThat(heldAgain).as("'a' ended (not listed any more); 'y' writes to another storage")
        .isInstanceOf(ChunkSweepLock.Held.class);
    ((ChunkSweepLock.Held) heldAgain).close();
  }

  private StorageGarbageCollector.Collected collect(ObjectStore store, Predicate<ArchiveLayout> exists, Instant now)
      throws IOException {
    return collect(store, exists, DEFAULT_MAX_UNUSED_PERCENT, now);
  }

  private StorageGarbageCollector.Collected collect(ObjectStore store, Predicate<ArchiveLayout> exists,
      int maxUnusedPercent, Instant now) throws IOException {
    return StorageGarbageCollector.collect(store, THIS_CLUSTER, exists,
        namespace -> lock.tryHold(new Scope(STORAGE, namespace), () -> List.copyOf(inFlight)), keys(sealed), GRACE,
        maxUnusedPercent, now);
  }

  /** The tests' chunk key, sealing or only naming the chunks; no other key id is known. */
  static ChunkKeys keys(boolean sealed) {
    return (namespace, keyId) -> keyId.equals(DeduplicatedCheckpoints.KEY.keyId())
        ? Optional.of(new ChunkKeys.NamespaceKey(DeduplicatedCheckpoints.KEY, sealed)) : Optional.empty();
  }

  private static Written writePacked(ObjectStore store, String name, String uid, List<byte[]> chunks, boolean sealed)
      throws IOException {
    return DeduplicatedCheckpoints.writePacked(store, new ArchiveLayout(NS, name, uid), chunks,
        DeduplicatedCheckpoints.storedAnywhere(store, NS), sealed);
  }

  /** The one pack in the namespace that is not one of {@code before}. */
  private static String onlyNewPack(ObjectStore store, Set<String> before) throws IOException {
    Set<String> added = new HashSet<>(DeduplicatedCheckpoints.packIds(store, NS));
    added.removeAll(before);
    assertThat(added).hasSize(1);
    return added.iterator().next();
  }

  private static Written write(ObjectStore store, String name, String uid, List<byte[]> chunks) throws IOException {
    return write(store, name, uid, chunks, DeduplicatedCheckpoints.storedChunks(store, NS));
  }

  private static Written write(ObjectStore store, String name, String uid, List<byte[]> chunks, Set<String> present)
      throws IOException {
    return DeduplicatedCheckpoints.write(store, new ArchiveLayout(NS, name, uid), chunks, present);
  }

  /** 1000 bytes that name what they are for. */
  static byte[] chunk(String label) {
    return Arrays.copyOf(label.getBytes(StandardCharsets.UTF_8), 1000);
  }

  private static String name(byte[] chunk) {
    return DeduplicatedCheckpoints.name(NS, chunk);
  }

  private static Set<String> stored(ObjectStore store) throws IOException {
    return DeduplicatedCheckpoints.storedChunks(store, NS);
  }

  static ObjectStore s3Store(S3Server server) {
    return StorageGarbageCollectorTest.s3Store(server, server.endpoint());
  }
}
