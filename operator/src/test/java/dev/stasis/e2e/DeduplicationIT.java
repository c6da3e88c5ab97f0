package dev.stasis.e2e;

import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.EncryptionSpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.SecretReference;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.dedup.ChunkCipher;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.TestStorage;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Deduplicated process checkpoints on real parts (issue 18): real CRIU dumping a counter that holds
 * 64 MiB of incompressible memory, s3proxy holding the chunks, the API server, operator and agent.
 * A second checkpoint after a few MiB were rewritten uploads a small fraction of the first; both
 * restore with exactly the memory they were taken with and count on; whatever is altered in storage
 * fails the restore before CRIU sees a byte.
 */
class DeduplicationIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  private static final int MIB = 1 << 20;
  private static final int MEMORY_MIB = 64;
  private static final String SECRETS_NAMESPACE = "default";

  @Test
  void aSecondCheckpointUploadsOnlyWhatChangedAndBothRestoreExactly() throws Exception {
    secondCheckpointStoresLittleAndBothRestoreExactly(dedupStorage(false), "plain", () -> {});
  }

  /** Both restore after the storage's key was rotated: their chunks are opened with the key their manifest names. */
  @Test
  void onAnEncryptingStorageChunksAreSealedAndDeduplicatedAlikeAndRestoreAfterRotation() throws Exception {
    String storage = dedupStorage(true);
    Map<String, Long> chunks = secondCheckpointStoresLittleAndBothRestoreExactly(storage, "sealed", () -> {
      byte[] k2 = new byte[32];
      new SecureRandom().nextBytes(k2);
      cluster.client().secrets().inNamespace(SECRETS_NAMESPACE).withName(storage + "-keys").edit(secret -> {
        secret.getData().put("k2", Base64.getEncoder().encodeToString(k2));
        return secret;
      });
      editStorage(storage, s -> s.getSpec().encryption.currentKeyId = "k2");
    });
    try (ObjectStore store = cluster.openStorage(storage)) {
      String anyChunk = chunks.keySet().iterator().next();
      byte[] object = store.read(anyChunk);
      assertThat(new String(object, 0, 4, StandardCharsets.US_ASCII)).isEqualTo("STSC");
      Checkpoint first = cluster.checkpoint("sealed-1");
      Manifest manifest = Manifest.fromJson(store.read(layout(first).manifestKey()));
      assertThat(manifest.chunks.encryption).isEqualTo(ChunkCipher.ALGORITHM);
      assertThat(manifest.chunks.keyId).isEqualTo("k1");
    }
  }

  /**
   * Checkpoints {@code <prefix>-1} and {@code <prefix>-2} of one memcounter, 4 MiB rewritten in
   * between, then does {@code beforeRestores} and restores both; returns the chunk objects after the first.
   */
  private Map<String, Long> secondCheckpointStoresLittleAndBothRestoreExactly(String storage, String prefix,
      Runnable beforeRestores) throws Exception {
    Path out = cluster.dir().resolve(prefix + "-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("memcounter", Integer.toString(MEMORY_MIB),
        out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    String namespaceChunks = ArchiveLayout.chunkPrefix(cluster.namespace());

    String sumFirst = Workloads.memorySum(counter.pid(), out, TIMEOUT);
    long before1 = Workloads.count(out);
    Checkpoint first = cluster.awaitCheckpoint(cluster.createCheckpoint(prefix + "-1", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after1 = Workloads.count(out);
    Map<String, Long> afterFirst = objects(storage, cluster.namespace() + "/");
    Map<String, Long> chunksAfterFirst = under(afterFirst, namespaceChunks);
    assertThat(first.getStatus().archive.sizeBytes).as("logical size").isGreaterThan(MEMORY_MIB * (long) MIB);
    assertThat(first.getStatus().archive.newBytes).as("the first checkpoint stores all its memory")
        .isGreaterThan(MEMORY_MIB * (long) MIB)
        .isEqualTo(chunksAfterFirst.values().stream().mapToLong(Long::longValue).sum()
            + bytesUnder(afterFirst, layout(first).prefix()) - manifestBytes(afterFirst, first));
    assertThat(chunksAfterFirst.size()).as("128 KiB chunks").isBetween(MEMORY_MIB * 8, MEMORY_MIB * 8 + 200);

    Workloads.signal(counter.pid(), "USR1"); // rewrites 4 MiB
    String sumSecond = Workloads.memorySum(counter.pid(), out, TIMEOUT);
    assertThat(sumSecond).isNotEqualTo(sumFirst);
    long before2 = Workloads.count(out);
    Checkpoint second = cluster.awaitCheckpoint(cluster.createCheckpoint(prefix + "-2", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after2 = Workloads.count(out);
    Map<String, Long> afterSecond = objects(storage, cluster.namespace() + "/");
    Map<String, Long> appeared = new HashMap<>(afterSecond);
    appeared.keySet().removeAll(afterFirst.keySet());
    Map<String, Long> newChunks = under(appeared, namespaceChunks);
    assertThat(appeared.keySet()).as("only new chunks and the second checkpoint's own objects appeared")
        .allMatch(key -> key.startsWith(namespaceChunks) || key.startsWith(layout(second).prefix()));
    assertThat(second.getStatus().archive.newBytes).as("the second checkpoint uploads the rewritten memory only")
        .isLessThan(MEMORY_MIB * (long) MIB * 15 / 100)
        .isGreaterThan(4L * MIB)
        .isEqualTo(newChunks.values().stream().mapToLong(Long::longValue).sum()
            + bytesUnder(afterSecond, layout(second).prefix()) - manifestBytes(afterSecond, second));
    assertThat(second.getStatus().archive.sizeBytes).isGreaterThan(MEMORY_MIB * (long) MIB);
    assertThat(newChunks.size()).isLessThan(chunksAfterFirst.size() / 8);
    counter.close();

    beforeRestores.run();
    restoreExactly(prefix + "-1", out, before1, after1, sumFirst);
    restoreExactly(prefix + "-2", out, before2, after2, sumSecond);
    return chunksAfterFirst;
  }

  @Test
  void aTamperedSwappedOrMissingChunkOrAnAlteredIndexFailsTheRestoreBeforeCriuRuns() throws Exception {
    String storage = dedupStorage(false);
    Path out = cluster.dir().resolve("tamper-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("memcounter", "16", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    Checkpoint checkpoint = cluster.awaitCheckpoint(cluster.createCheckpoint("tampered", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    counter.close();
    try (ObjectStore store = cluster.openStorage(storage)) {
      // Whole blocks of the incompressible memory, stored raw: a flipped byte is the chunk's own bytes changed.
      List<String> chunks = store.list(ArchiveLayout.chunkPrefix(cluster.namespace())).stream()
          .filter(o -> o.sizeBytes() == 128 * 1024 + 1).map(StoredObject::key).toList();
      String victim = chunks.get(chunks.size() / 2);
      String other = chunks.get(chunks.size() / 2 + 1);
      byte[] original = store.read(victim);

      byte[] flipped = original.clone();
      flipped[flipped.length / 2] ^= 1;
      store.put(victim, flipped);
      assertRestoreFails("altered", "ArchiveNotAuthentic", "holds other bytes than its name says");

      store.put(victim, store.read(other));
      assertRestoreFails("swapped", "ArchiveNotAuthentic", "chunk " + victim.substring(victim.lastIndexOf('/') + 1));

      store.deleteAll(victim);
      assertRestoreFails("missing", "ArchiveMissing", "is missing from");

      store.put(victim, original);
      String index = layout(checkpoint).chunkIndexKey();
      byte[] indexBytes = store.read(index);
      indexBytes[indexBytes.length - 10] ^= 1;
      store.put(index, indexBytes);
      assertRestoreFails("index", "ArchiveCorrupted", "the chunk index");
    }
  }

  /** leaveRunning: false: the tree is held frozen until its chunks, archive and manifest are stored and recorded. */
  @Test
  void aWorkloadEndedByItsCheckpointGoesOnFromItsChunks() throws Exception {
    String storage = dedupStorage(false);
    Path out = cluster.dir().resolve("ended-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("memcounter", "16", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    String sum = Workloads.memorySum(counter.pid(), out, TIMEOUT);
    long before = Workloads.count(out);
    CheckpointOptions options = new CheckpointOptions();
    options.leaveRunning = false;
    Checkpoint ended = cluster.awaitCheckpoint(cluster.createCheckpoint("ended", counter.pid(), storage, options),
        CheckpointPhase.Completed);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(counter.pid()));
    long after = Workloads.settled(() -> Workloads.count(out));
    assertThat(ended.getStatus().archive.newBytes).isGreaterThan(16L * MIB);

    restoreExactly("ended", out, before, after, sum);
  }

  /** The switch: a storage that did not deduplicate keeps restoring its whole archives after it does. */
  @Test
  void aWholeArchiveStoredBeforeDeduplicationWasOnStillRestores() throws Exception {
    String storage = "whole-" + UUID.randomUUID().toString().substring(0, 8);
    TestStorage.s3(storage, cluster.s3().endpoint(), "checkpoints").credentials(cluster.s3()).with(spec -> {
      spec.s3.prefix = "stasis";
      spec.deduplication = false; // whatever the default
    }).create(cluster.client());
    Path out = cluster.dir().resolve("whole-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("memcounter", "16", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    long before = Workloads.count(out);
    Checkpoint whole = cluster.awaitCheckpoint(cluster.createCheckpoint("whole", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after = Workloads.count(out);
    assertThat(whole.getStatus().archive.newBytes).isEqualTo(whole.getStatus().archive.storedBytes);

    editStorage(storage, s -> s.getSpec().deduplication = true);
    Checkpoint chunked = cluster.awaitCheckpoint(cluster.createCheckpoint("chunked", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    counter.close();
    try (ObjectStore store = cluster.openStorage(storage)) {
      assertThat(Manifest.fromJson(store.read(layout(whole).manifestKey())).format).isEqualTo(Manifest.FORMAT);
      assertThat(Manifest.fromJson(store.read(layout(chunked).manifestKey())).format)
          .isEqualTo(Manifest.FORMAT_CHUNKED);
    }
    Restore restored = cluster.awaitRestore(cluster.createRestore("whole", "whole"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    Workloads.awaitCountingOnFrom(out, before, after, TIMEOUT);
  }

  private void restoreExactly(String checkpoint, Path out, long before, long after, String sum) throws Exception {
    Restore restore = cluster.awaitRestore(cluster.createRestore(checkpoint, checkpoint), RestorePhase.Completed);
    long pid = restore.getStatus().restoredPid;
    cluster.afterTest(() -> Workloads.kill(pid));
    Workloads.awaitCountingOnFrom(out, before, after, TIMEOUT);
    assertThat(Workloads.memorySum(pid, out, TIMEOUT)).as("the restored memory is the checkpointed memory")
        .isEqualTo(sum);
    Workloads.kill(pid);
    await().atMost(TIMEOUT).until(() -> "Exited".equals(cluster.restore(checkpoint).getStatus().processState));
  }

  private void assertRestoreFails(String name, String reason, String text) {
    Restore failed = cluster.awaitRestore(cluster.createRestore(name, "tampered"), RestorePhase.Failed);
    cluster.assertFailure(failed.getStatus().reason, failed.getStatus().message, reason, text);
    assertThat(failed.getStatus().criuLogTail).as("CRIU never ran").isNull();
    assertThat(failed.getStatus().restoredPid).isNull();
  }



  private static Map<String, Long> objects(String storage, String prefix) throws Exception {
    try (ObjectStore store = cluster.openStorage(storage)) {
      return store.list(prefix).stream().collect(Collectors.toMap(StoredObject::key, StoredObject::sizeBytes));
    }
  }

  private static Map<String, Long> under(Map<String, Long> objects, String prefix) {
    return objects.entrySet().stream().filter(e -> e.getKey().startsWith(prefix))
        .collect(Collectors.toMap(Map.Entry::getKey, Map.Entry::getValue));
  }

  private static long bytesUnder(Map<String, Long> objects, String prefix) {
    return under(objects, prefix).values().stream().mapToLong(Long::longValue).sum();
  }

  /** newBytes counts the archive, the index and new chunks; the manifest (a few KiB) is left out. */
  private static long manifestBytes(Map<String, Long> objects, Checkpoint checkpoint) {
    return objects.get(layout(checkpoint).manifestKey());
  }

  /** An S3 storage that deduplicates; encrypting with key k1 of Secret {@code <storage>-keys} if asked. */
  private static String dedupStorage(boolean encrypt) {
    String name = "dedup-" + UUID.randomUUID().toString().substring(0, 8);
    if (encrypt) {
      byte[] key = new byte[32];
      new SecureRandom().nextBytes(key);
      cluster.client().resource(new SecretBuilder().withNewMetadata().withName(name + "-keys")
          .withNamespace(SECRETS_NAMESPACE).endMetadata()
          .withData(Map.of("k1", Base64.getEncoder().encodeToString(key))).build()).create();
    }
    TestStorage.s3(name, cluster.s3().endpoint(), "checkpoints").credentials(cluster.s3()).with(spec -> {
      spec.s3.prefix = "stasis";
      spec.deduplication = true;
      if (encrypt) {
        spec.encryption = new EncryptionSpec(new SecretReference(name + "-keys", SECRETS_NAMESPACE), "k1");
      }
    }).create(cluster.client());
    return name;
  }

  private static void editStorage(String name, Consumer<CheckpointStorage> change) {
    cluster.client().resources(CheckpointStorage.class).withName(name).edit(s -> {
      change.accept(s);
      return s;
    });
  }

  private static ArchiveLayout layout(Checkpoint checkpoint) {
    var meta = checkpoint.getMetadata();
    return new ArchiveLayout(meta.getNamespace(), meta.getName(), meta.getUid());
  }
}
