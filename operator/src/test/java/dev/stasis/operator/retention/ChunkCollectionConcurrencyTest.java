package dev.stasis.operator.retention;

import static dev.stasis.api.CheckpointStorageSpec.DEFAULT_MAX_UNUSED_PERCENT;
import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.agent.checkpoint.ChunkedImagesUpload;
import dev.stasis.agent.restore.ChunkedImagesDownload;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.criu.PagemapImages;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.operator.retention.ChunkSweepLock.InFlight;
import dev.stasis.operator.retention.ChunkSweepLock.Scope;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.storage.ObjectStore;
import dev.stasis.testing.DeduplicatedCheckpoints;
import dev.stasis.testing.S3Server;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Checkpoints written and deleted while the storage's chunks are swept again and again, on a
 * directory and on s3proxy. Writers take their grant through the lock's grant side and store their
 * memory images through the agent's write path ({@link ChunkedImagesUpload} with its
 * {@code PackedChunkStore}: one listing of the namespace's loose chunks and packs, pack indexes
 * checked, 128 KiB pagemap-aligned chunks, only the missing ones put into a new pack, the pack's
 * index after it, then the chunk index), then the archive and the manifest last, and delete their
 * older checkpoints as a schedule's retention would, so packs die and become mostly dead. The
 * grace period is zero, so that only the lock stands between a sweep (deleting dead packs,
 * repacking mostly dead ones) and a chunk a writer found present or has just stored: afterwards
 * every kept checkpoint's every chunk must read back, by its name, as the memory it was cut from,
 * and after a last sweep no pack may be less than half referenced. With the lock's in-flight check
 * disabled it fails.
 */
class ChunkCollectionConcurrencyTest {
  static final String NS = "jobs";
  static final String STORAGE = "store";
  static final int WRITERS = 3;
  static final int CHECKPOINTS_PER_WRITER = 12;
  /** Each writer keeps its newest ones, like keepLast. */
  static final int KEEP = 2;
  static final int BLOCK = 128 << 10;
  /** Where the processes' memory starts: a multiple of the chunk size, so chunks are the blocks written. */
  static final long ADDRESS = 0x7f0000000000L;
  static final ChunkKey CHUNK_KEY = ChunkKey.of(new ArchiveKey("chunks-1", new byte[32]), NS);

  @TempDir Path root;
  /** The writers' images folders, as CRIU leaves them. */
  @TempDir Path dumps;

  @Test
  void fileSystem() throws Exception {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      checkpointsDeletesAndSweepsTogether(store);
    }
  }

  @Test
  void s3() throws Exception {
    try (S3Server server = S3Server.start()) {
      server.createBucket("checkpoints");
      try (ObjectStore store = ChunkCollectionTest.s3Store(server)) {
        checkpointsDeletesAndSweepsTogether(store);
      }
    }
  }

  private void checkpointsDeletesAndSweepsTogether(ObjectStore store) throws Exception {
    List<byte[]> shared = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      shared.add(block("shared " + i));
    }
    Map<String, byte[]> memories = new ConcurrentHashMap<>();
    Schedule schedule = new Schedule(store, (namespace, keyId) -> keyId.equals(CHUNK_KEY.keyId())
        ? Optional.of(new ChunkKeys.NamespaceKey(CHUNK_KEY, false)) : Optional.empty());
    schedule.run((layout, random) -> {
      var upload = new ChunkedImagesUpload(store, layout, CHUNK_KEY, false, ArchiveCodec.NONE);
      upload.listStored(); // before CRIU runs
      ByteArrayOutputStream memory = new ByteArrayOutputStream();
      for (int i = 0; i < 8; i++) {
        memory.writeBytes(shared.get(random.nextInt(shared.size())));
      }
      String name = layout.checkpointName();
      memory.writeBytes(block("only in " + name));
      memory.writeBytes(block("only in " + name + ", too"));
      Path images = Files.createDirectories(dumps.resolve(name));
      PagemapImages.writeProcess(images, 1000 + Math.floorMod(name.hashCode(), 1000), 1, ADDRESS,
          memory.toByteArray());
      var stored = upload.store(images, () -> true, cut -> {});
      DeduplicatedCheckpoints.complete(store, layout, stored.chunks());
      memories.put(layout.checkpointUid(), memory.toByteArray());
    });
    assertEveryChunkReadsBack(store, schedule.kept, memories);

    var last = schedule.collect();
    schedule.collected.add(last);
    assertThat(schedule.sweepsWaited.get()).as("sweeps met checkpoints in flight").isPositive();
    assertThat(schedule.collected.stream().mapToInt(c -> c.chunks().packs().deleted()).sum())
        .as("the deleted checkpoints' dead packs went").isPositive();
    assertThat(schedule.collected.stream().mapToInt(c -> c.chunks().packs().repacked()).sum())
        .as("mostly dead packs were repacked").isPositive();
    assertEveryChunkReadsBack(store, schedule.kept, memories);
    Set<String> referenced = new HashSet<>();
    for (ArchiveLayout layout : schedule.kept.values()) {
      referenced.addAll(referencedBy(store, layout));
    }
    for (PackIndex index : DeduplicatedCheckpoints.packIndexes(store, NS, CHUNK_KEY)) {
      long live = index.entries().stream().filter(e -> referenced.contains(e.name()))
          .mapToLong(PackIndex.Entry::storedBytes).sum();
      assertThat(2 * live).as("pack %s after a last sweep: at least half of it referenced", index.packId())
          .isGreaterThanOrEqualTo(index.packBytes());
    }
    assertThat(store.list(NS + "/").stream().map(o -> o.key()).filter(k -> !k.contains("/.packs/"))
        .map(k -> ArchiveLayout.ofKey(k).orElseThrow().checkpointUid()).distinct().toList())
        .containsExactlyInAnyOrderElementsOf(schedule.kept.keySet());
  }

  @Test
  void aRestoreWhileItsHintedPackIsRepackedOnAFileSystem() throws Exception {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      restoresWhileRepacking(store);
    }
  }

  @Test
  void aRestoreWhileItsHintedPackIsRepackedOnS3() throws Exception {
    try (S3Server server = S3Server.start()) {
      server.createBucket("checkpoints");
      try (ObjectStore store = ChunkCollectionTest.s3Store(server)) {
        restoresWhileRepacking(store);
      }
    }
  }

  /**
   * The agent's write and restore paths with a repack between them: "old" stores 16 blocks in a
   * pack, "kept" shares 2 of them (its chunk index hints at old's pack) and stores 6 more; "old" is
   * deleted, so its pack is 2/16 referenced and the collector repacks it. Restores of "kept"
   * ({@code ChunkedImagesDownload}) run over and over while the collection runs, and after it, when
   * the hinted pack is gone: each one writes the very pages image "kept" was stored from.
   */
  private void restoresWhileRepacking(ObjectStore store) throws Exception {
    ChunkSweepLock lock = new ChunkSweepLock();
    List<byte[]> blocks = new ArrayList<>();
    for (int i = 0; i < 22; i++) {
      byte[] block = new byte[BLOCK];
      new Random(i).nextBytes(block);
      blocks.add(block);
    }
    ArchiveLayout old = new ArchiveLayout(NS, "old", UUID.randomUUID().toString());
    storeThroughTheAgent(store, old, blocks.subList(0, 16));
    ArchiveLayout kept = new ArchiveLayout(NS, "kept", UUID.randomUUID().toString());
    List<byte[]> keptBlocks = new ArrayList<>(List.of(blocks.get(3), blocks.get(11)));
    keptBlocks.addAll(blocks.subList(16, 22));
    Path keptImages = storeThroughTheAgent(store, kept, keptBlocks);
    StorageGarbageCollector.deleteCheckpoint(store, old);
    String oldPack = DeduplicatedCheckpoints.packIndexes(store, NS, CHUNK_KEY).stream()
        .filter(i -> i.entries().size() == 16).findFirst().orElseThrow().packId();

    Manifest manifest = Manifest.fromJson(store.read(kept.manifestKey()));
    RecordedManifest recorded = new RecordedManifest(manifest, kept.archiveKey(ArchiveCodec.NONE),
        new ArchiveIdentity(NS, kept.checkpointUid(), ""), new ArchiveSummary(0, 0, ""));
    AtomicBoolean collecting = new AtomicBoolean(true);
    AtomicInteger restores = new AtomicInteger();
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try {
      Future<?> restoring = threads.submit(() -> {
        while (collecting.get() || restores.get() < 3) {
          Path into = Files.createDirectories(dumps.resolve("restore-" + restores.incrementAndGet()));
          new ChunkedImagesDownload(store, recorded, CHUNK_KEY).writeInto(into, written -> {});
          assertThat(Files.readAllBytes(into.resolve("pages-1.img")))
              .as("restore %d of kept", restores.get()).isEqualTo(Files.readAllBytes(keptImages.resolve("pages-1.img")));
        }
        return null;
      });
      Future<StorageGarbageCollector.Collected> collection = threads.submit(() -> {
        try {
          return StorageGarbageCollector.collect(store, "this-cluster", l -> l.equals(kept),
              namespace -> lock.tryHold(new Scope(STORAGE, namespace), List::of),
              (namespace, keyId) -> Optional.of(new ChunkKeys.NamespaceKey(CHUNK_KEY, false)), Duration.ofHours(1),
              DEFAULT_MAX_UNUSED_PERCENT, Instant.now().plus(Duration.ofHours(2)));
        } finally {
          collecting.set(false);
        }
      });
      assertThat(collection.get(5, TimeUnit.MINUTES).chunks().packs().repacked()).isEqualTo(1);
      restoring.get(5, TimeUnit.MINUTES);
    } finally {
      threads.shutdownNow();
    }
    assertThat(DeduplicatedCheckpoints.packIds(store, NS)).as("the hinted pack was repacked away")
        .doesNotContain(oldPack);
    List<ChunkIndex.ChunkRef> hints = new ArrayList<>();
    try (InputStream index = store.open(kept.chunkIndexKey())) {
      ChunkIndex.read(index, (image, chunk) -> hints.add(chunk));
    }
    assertThat(hints.get(0).location().packId()).isEqualTo(oldPack);
  }

  /** Stores {@code blocks} as one process's memory through the agent's write path; the images folder. */
  private Path storeThroughTheAgent(ObjectStore store, ArchiveLayout layout, List<byte[]> blocks) throws Exception {
    var upload = new ChunkedImagesUpload(store, layout, CHUNK_KEY, false, ArchiveCodec.NONE);
    upload.listStored();
    ByteArrayOutputStream memory = new ByteArrayOutputStream();
    blocks.forEach(memory::writeBytes);
    Path images = Files.createDirectories(dumps.resolve(layout.checkpointName()));
    PagemapImages.writeProcess(images, 4242, 1, ADDRESS, memory.toByteArray());
    DeduplicatedCheckpoints.complete(store, layout, upload.store(images, () -> true, cut -> {}).chunks());
    return images;
  }

  /**
   * {@link #WRITERS} writers each take {@link #CHECKPOINTS_PER_WRITER} checkpoints, each through the
   * lock's grant side, stored by {@code checkpoint}, deleting all but their newest {@link #KEEP} as
   * they go, while a sweeper collects again and again at a grace period of zero.
   */
  private static final class Schedule {
    final ObjectStore store;
    final ChunkKeys keys;
    // held off once, a sweep makes new checkpoints wait for it, so that sweeps do run between them
    final ChunkSweepLock lock = new ChunkSweepLock(Duration.ZERO, Clock.systemUTC());
    /** The namespace's Checkpoints as the API server lists them: UID to (name, storage once assigned). */
    final Map<String, InFlight> inFlight = new ConcurrentHashMap<>();
    final Set<String> existing = ConcurrentHashMap.newKeySet();
    /** The checkpoints not deleted, by UID. */
    final Map<String, ArchiveLayout> kept = new ConcurrentHashMap<>();
    final List<StorageGarbageCollector.Collected> collected = new CopyOnWriteArrayList<>();
    final AtomicInteger grantsRefused = new AtomicInteger();
    final AtomicInteger sweepsHeld = new AtomicInteger();
    final AtomicInteger sweepsWaited = new AtomicInteger();
    final StorageGarbageCollector.ChunkLocks locks;

    /** Stores one checkpoint's chunks, index, archive and manifest. */
    interface Checkpoint {
      void store(ArchiveLayout layout, Random random) throws Exception;
    }

    Schedule(ObjectStore store, ChunkKeys keys) {
      this.store = store;
      this.keys = keys;
      this.locks = namespace -> {
        var attempt = lock.tryHold(new Scope(STORAGE, namespace), () -> List.copyOf(inFlight.values()));
        (attempt instanceof ChunkSweepLock.Held ? sweepsHeld : sweepsWaited).incrementAndGet();
        return attempt;
      };
    }

    void run(Checkpoint checkpoint) throws Exception {
      Scope scope = new Scope(STORAGE, NS);
      AtomicBoolean writing = new AtomicBoolean(true);
      ExecutorService threads = Executors.newFixedThreadPool(WRITERS + 1);
      try {
        List<Future<?>> writers = new ArrayList<>();
        for (int w = 0; w < WRITERS; w++) {
          int writer = w;
          writers.add(threads.submit(() -> {
            Random random = new Random(writer);
            List<ArchiveLayout> mine = new ArrayList<>();
            for (int n = 0; n < CHECKPOINTS_PER_WRITER; n++) {
              String uid = UUID.randomUUID().toString();
              String name = "w" + writer + "-" + n;
              existing.add(uid);
              inFlight.put(uid, new InFlight(uid, name, null)); // created: Pending
              while (!lock.grant(scope, uid)) {
                grantsRefused.incrementAndGet();
                Thread.sleep(2);
              }
              inFlight.put(uid, new InFlight(uid, name, STORAGE)); // assigned with its grant
              ArchiveLayout layout = new ArchiveLayout(NS, name, uid);
              checkpoint.store(layout, random);
              kept.put(uid, layout);
              inFlight.remove(uid); // Completed
              lock.finished(uid);
              mine.add(layout);
              if (mine.size() > KEEP) {
                ArchiveLayout doomed = mine.remove(0);
                kept.remove(doomed.checkpointUid());
                StorageGarbageCollector.deleteCheckpoint(store, doomed); // as the Checkpoint's cleanup does
                existing.remove(doomed.checkpointUid());
              }
            }
            return null;
          }));
        }
        Future<?> sweeper = threads.submit(() -> {
          while (writing.get() || sweepsHeld.get() < 3) {
            var pass = collect();
            assertThat(pass.chunks().stopped()).isEmpty();
            collected.add(pass);
          }
          return null;
        });
        for (Future<?> writer : writers) {
          writer.get(5, TimeUnit.MINUTES);
        }
        writing.set(false);
        sweeper.get(5, TimeUnit.MINUTES);
      } finally {
        threads.shutdownNow();
      }
      assertThat(kept).hasSize(WRITERS * KEEP);
      assertThat(sweepsHeld.get()).as("sweeps ran between the checkpoints").isGreaterThanOrEqualTo(3);
      assertThat(grantsRefused.get()).as("checkpoints met sweeps").isPositive();
    }

    StorageGarbageCollector.Collected collect() throws IOException {
      return StorageGarbageCollector.collect(store, "this-cluster", l -> existing.contains(l.checkpointUid()), locks,
          keys, Duration.ZERO, DEFAULT_MAX_UNUSED_PERCENT, Instant.now().plusSeconds(1));
    }
  }

  /**
   * Every chunk of every kept checkpoint, found by its name as a restore does (in the pack indexes,
   * whatever pack its chunk index hints at), is the 128 KiB of memory it was cut from.
   */
  private static void assertEveryChunkReadsBack(ObjectStore store, Map<String, ArchiveLayout> kept,
      Map<String, byte[]> memories) throws IOException {
    for (ArchiveLayout layout : kept.values()) {
      byte[] memory = memories.get(layout.checkpointUid());
      List<String> names = new ArrayList<>();
      try (InputStream index = store.open(layout.chunkIndexKey())) {
        ChunkIndex.read(index, (image, chunk) -> names.add(chunk.name()));
      }
      assertThat(names).hasSize(memory.length / BLOCK);
      for (int i = 0; i < names.size(); i++) {
        assertThat(DeduplicatedCheckpoints.readChunk(store, NS, names.get(i), BLOCK, CHUNK_KEY, false))
            .as("chunk %d of %s, after sweeps and repacks while checkpoints were taken and deleted", i,
                layout.checkpointName()).isEqualTo(Arrays.copyOfRange(memory, i * BLOCK, (i + 1) * BLOCK));
      }
    }
  }

  /** 128 KiB that say what they are for. */
  private static byte[] block(String label) {
    return Arrays.copyOf(label.getBytes(StandardCharsets.UTF_8), BLOCK);
  }

  /** The names the stored chunk index of {@code layout} lists. */
  private static Set<String> referencedBy(ObjectStore store, ArchiveLayout layout) throws IOException {
    Set<String> names = new HashSet<>();
    assertThat(store.exists(layout.manifestKey())).isTrue();
    try (InputStream index = store.open(layout.chunkIndexKey())) {
      ChunkIndex.read(index, (image, chunk) -> names.add(chunk.name()));
    }
    return names;
  }
}
