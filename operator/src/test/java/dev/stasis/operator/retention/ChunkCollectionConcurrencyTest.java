package dev.stasis.operator.retention;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.agent.checkpoint.ChunkedImagesUpload;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.criu.PagemapImages;
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
 * memory images through the agent's write path ({@link ChunkedImagesUpload}: one listing of the
 * namespace's chunks, 128 KiB pagemap-aligned chunks, only the missing ones uploaded, then the
 * index), then the archive and the manifest last, and delete their older checkpoints as a
 * schedule's retention would. The grace period is zero, so
 * that only the lock stands between a sweep and a chunk a writer found present or has just
 * uploaded: afterwards every manifest's every chunk must exist, and a last sweep must leave exactly
 * the chunks some manifest refers to.
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
  /** The loose-chunk writers store no packs. */
  static final ChunkKeys NO_PACK_KEYS = StorageGarbageCollectorTest.NO_KEYS;

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
  void packsOnAFileSystem() throws Exception {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      packedCheckpointsDeletesAndSweepsWithRepackTogether(store);
    }
  }

  @Test
  void packsOnS3() throws Exception {
    try (S3Server server = S3Server.start()) {
      server.createBucket("checkpoints");
      try (ObjectStore store = ChunkCollectionTest.s3Store(server)) {
        packedCheckpointsDeletesAndSweepsWithRepackTogether(store);
      }
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
    Schedule schedule = new Schedule(store, NO_PACK_KEYS);
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
      PagemapImages.writeProcess(images, 1000 + Math.floorMod(name.hashCode(), 1000), 1, ADDRESS, memory.toByteArray());
      var stored = upload.store(images, cut -> {});
      DeduplicatedCheckpoints.complete(store, layout, stored.chunks());
    });

    Set<String> referenced = new HashSet<>();
    for (ArchiveLayout layout : schedule.kept.values()) {
      Set<String> names = referencedBy(store, layout);
      for (String name : names) {
        assertThat(store.exists(ArchiveLayout.chunkKey(NS, name)))
            .as("chunk %s of %s, swept while checkpoints were taken and deleted", name, layout.checkpointName())
            .isTrue();
      }
      referenced.addAll(names);
    }
    assertThat(schedule.sweepsWaited.get()).as("sweeps met checkpoints in flight").isPositive();

    var last = schedule.collect();
    int swept = last.chunks().deleted() + schedule.collected.stream().mapToInt(c -> c.chunks().deleted()).sum();
    assertThat(swept).as("the deleted checkpoints' own chunks went")
        .isGreaterThanOrEqualTo(2 * WRITERS * (CHECKPOINTS_PER_WRITER - KEEP));
    assertThat(DeduplicatedCheckpoints.storedChunks(store, NS)).as("exactly the chunks some manifest refers to")
        .isEqualTo(referenced);
    assertThat(store.list(NS + "/").stream().map(o -> o.key()).filter(k -> !k.contains("/.chunks/"))
        .map(k -> ArchiveLayout.ofKey(k).orElseThrow().checkpointUid()).distinct().toList())
        .containsExactlyInAnyOrderElementsOf(schedule.kept.keySet());
  }

  /**
   * As above with packs: each writer finds what the namespace stores (loose chunks, and the pack
   * indexes, checked) when it starts, puts its new chunks into one pack, then the pack's index,
   * its chunk index (hints into the packs it found them in), the archive and the manifest last.
   * Checkpoints share chunks, so deleting the old ones leaves packs mostly dead: the sweeps, at a
   * grace period of zero, repack them while others write. Afterwards every kept checkpoint's every
   * chunk reads back byte for byte by its name, and after a last sweep no pack is dead or mostly dead.
   */
  private void packedCheckpointsDeletesAndSweepsWithRepackTogether(ObjectStore store) throws Exception {
    List<byte[]> shared = DeduplicatedCheckpoints.randomChunks(new Random(18), 30);
    Map<String, List<byte[]>> memories = new ConcurrentHashMap<>();
    Schedule schedule = new Schedule(store, ChunkCollectionTest.keys(false));
    schedule.run((layout, random) -> {
      var present = DeduplicatedCheckpoints.storedAnywhere(store, NS); // before CRIU runs
      List<byte[]> memory = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        memory.add(shared.get(random.nextInt(shared.size())));
      }
      memory.addAll(DeduplicatedCheckpoints.randomChunks(random, 2));
      DeduplicatedCheckpoints.writePacked(store, layout, memory, present, false);
      memories.put(layout.checkpointUid(), memory);
    });
    assertEveryChunkReadsBack(store, schedule.kept, memories);

    var last = schedule.collect();
    schedule.collected.add(last);
    assertThat(schedule.collected.stream().mapToInt(c -> c.chunks().packs().deleted()).sum())
        .as("dead packs went").isPositive();
    assertThat(schedule.collected.stream().mapToInt(c -> c.chunks().packs().repacked()).sum())
        .as("mostly dead packs were repacked").isPositive();
    assertEveryChunkReadsBack(store, schedule.kept, memories);
    Set<String> referenced = new HashSet<>();
    for (ArchiveLayout layout : schedule.kept.values()) {
      referenced.addAll(referencedBy(store, layout));
    }
    for (PackIndex index : DeduplicatedCheckpoints.packIndexes(store, NS)) {
      long live = index.entries().stream().filter(e -> referenced.contains(e.name()))
          .mapToLong(PackIndex.Entry::storedBytes).sum();
      assertThat(2 * live).as("pack %s after a last sweep: at least half of it referenced", index.packId())
          .isGreaterThanOrEqualTo(index.packBytes());
    }
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
          keys, Duration.ZERO, Instant.now().plusSeconds(1));
    }
  }

  /** Every chunk of every kept checkpoint, found by its name as a restore does, is the chunk written. */
  private static void assertEveryChunkReadsBack(ObjectStore store, Map<String, ArchiveLayout> kept,
      Map<String, List<byte[]>> memories) throws IOException {
    for (ArchiveLayout layout : kept.values()) {
      List<byte[]> memory = memories.get(layout.checkpointUid());
      List<String> names = new ArrayList<>();
      try (InputStream index = store.open(layout.chunkIndexKey())) {
        ChunkIndex.read(index, (image, chunk) -> names.add(chunk.name()));
      }
      for (int i = 0; i < names.size(); i++) {
        assertThat(DeduplicatedCheckpoints.readChunk(store, NS, names.get(i), memory.get(i).length, false))
            .as("chunk %d of %s, after sweeps and repacks while checkpoints were taken and deleted", i,
                layout.checkpointName()).isEqualTo(memory.get(i));
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
