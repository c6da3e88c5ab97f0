package dev.stasis.operator.retention;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.agent.checkpoint.ChunkedImagesUpload;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.dedup.ChunkIndex;
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
    // held off once, a sweep makes new checkpoints wait for it, so that sweeps do run between them
    ChunkSweepLock lock = new ChunkSweepLock(Duration.ZERO, Clock.systemUTC());
    Scope scope = new Scope(STORAGE, NS);
    /** The namespace's Checkpoints as the API server lists them: UID to (name, storage once assigned, finished). */
    Map<String, InFlight> inFlight = new ConcurrentHashMap<>();
    Set<String> existing = ConcurrentHashMap.newKeySet();
    Map<String, ArchiveLayout> kept = new ConcurrentHashMap<>();
    List<byte[]> shared = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      shared.add(block("shared " + i));
    }
    AtomicInteger grantsRefused = new AtomicInteger();
    AtomicInteger sweepsHeld = new AtomicInteger();
    AtomicInteger sweepsWaited = new AtomicInteger();
    AtomicInteger chunksSwept = new AtomicInteger();
    AtomicBoolean writing = new AtomicBoolean(true);
    StorageGarbageCollector.ChunkLocks locks = namespace -> {
      var attempt = lock.tryHold(new Scope(STORAGE, namespace), () -> List.copyOf(inFlight.values()));
      (attempt instanceof ChunkSweepLock.Held ? sweepsHeld : sweepsWaited).incrementAndGet();
      return attempt;
    };

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
            var upload = new ChunkedImagesUpload(store, layout, CHUNK_KEY, false, ArchiveCodec.NONE);
            upload.listStored(); // before CRIU runs
            ByteArrayOutputStream memory = new ByteArrayOutputStream();
            for (int i = 0; i < 8; i++) {
              memory.writeBytes(shared.get(random.nextInt(shared.size())));
            }
            memory.writeBytes(block("only in " + name));
            memory.writeBytes(block("only in " + name + ", too"));
            Path images = Files.createDirectories(dumps.resolve(name));
            PagemapImages.writeProcess(images, 1000 + n, 1, ADDRESS, memory.toByteArray());
            var stored = upload.store(images, () -> true, cut -> {});
            DeduplicatedCheckpoints.complete(store, layout, stored.chunks());
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
          var collected = StorageGarbageCollector.collect(store, "this-cluster",
              l -> existing.contains(l.checkpointUid()), locks, Duration.ZERO, Instant.now().plusSeconds(1));
          assertThat(collected.chunks().stopped()).isEmpty();
          chunksSwept.addAndGet(collected.chunks().deleted());
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
    Set<String> referenced = new HashSet<>();
    for (ArchiveLayout layout : kept.values()) {
      Set<String> names = referencedBy(store, layout);
      for (String name : names) {
        assertThat(store.exists(ArchiveLayout.chunkKey(NS, name)))
            .as("chunk %s of %s, swept while checkpoints were taken and deleted", name, layout.checkpointName())
            .isTrue();
      }
      referenced.addAll(names);
    }
    assertThat(sweepsHeld.get()).as("sweeps ran between the checkpoints").isGreaterThanOrEqualTo(3);
    assertThat(sweepsWaited.get()).as("sweeps met checkpoints in flight").isPositive();
    assertThat(grantsRefused.get()).as("checkpoints met sweeps").isPositive();

    var last = StorageGarbageCollector.collect(store, "this-cluster", l -> existing.contains(l.checkpointUid()), locks,
        Duration.ZERO, Instant.now().plusSeconds(1));
    assertThat(chunksSwept.get() + last.chunks().deleted()).as("the deleted checkpoints' own chunks went")
        .isGreaterThanOrEqualTo(2 * WRITERS * (CHECKPOINTS_PER_WRITER - KEEP));
    assertThat(DeduplicatedCheckpoints.storedChunks(store, NS)).as("exactly the chunks some manifest refers to")
        .isEqualTo(referenced);
    assertThat(store.list(NS + "/").stream().map(o -> o.key()).filter(k -> !k.contains("/.chunks/"))
        .map(k -> ArchiveLayout.ofKey(k).orElseThrow().checkpointUid()).distinct().toList())
        .containsExactlyInAnyOrderElementsOf(kept.keySet());
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
