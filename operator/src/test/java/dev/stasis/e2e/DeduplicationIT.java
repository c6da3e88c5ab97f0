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
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.archive.dedup.ChunkCipher;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.ChunkObjects;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.kube.ChunkSecrets;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.TestStorage;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
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
 * The first checkpoint stores its chunks in a few packs; a second one after a few MiB were rewritten
 * uploads a small fraction of the first; both
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
    Map<String, Long> packs = secondCheckpointStoresLittleAndBothRestoreExactly(storage, "sealed", () -> {
      byte[] k2 = new byte[32];
      new SecureRandom().nextBytes(k2);
      cluster.client().secrets().inNamespace(SECRETS_NAMESPACE).withName(storage + "-keys").edit(secret -> {
        secret.getData().put("k2", Base64.getEncoder().encodeToString(k2));
        return secret;
      });
      editStorage(storage, s -> s.getSpec().encryption.currentKeyId = "k2");
    });
    try (ObjectStore store = cluster.openStorage(storage)) {
      String anyPack = packs.keySet().stream().filter(key -> key.endsWith(".pack")).findFirst().orElseThrow();
      byte[] object = store.readRange(anyPack, 0, 4);
      assertThat(new String(object, 0, 4, StandardCharsets.US_ASCII)).isEqualTo("STSC");
      Checkpoint first = cluster.checkpoint("sealed-1");
      Manifest manifest = Manifest.fromJson(store.read(layout(first).manifestKey()));
      assertThat(manifest.chunks.encryption).isEqualTo(ChunkCipher.ALGORITHM);
      assertThat(manifest.chunks.keyId).isEqualTo("k1");
    }
  }

  /**
   * Checkpoints {@code <prefix>-1} and {@code <prefix>-2} of one memcounter, 4 MiB rewritten in
   * between, then does {@code beforeRestores} and restores both; returns the pack objects after the first.
   */
  private Map<String, Long> secondCheckpointStoresLittleAndBothRestoreExactly(String storage, String prefix,
      Runnable beforeRestores) throws Exception {
    Path out = cluster.dir().resolve(prefix + "-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("memcounter", Integer.toString(MEMORY_MIB),
        out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    String namespacePacks = ArchiveLayout.packPrefix(cluster.namespace());

    String sumFirst = Workloads.memorySum(counter.pid(), out, TIMEOUT);
    long before1 = Workloads.count(out);
    Checkpoint first = cluster.awaitCheckpoint(cluster.createCheckpoint(prefix + "-1", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after1 = Workloads.count(out);
    Map<String, Long> afterFirst = objects(storage, cluster.namespace() + "/");
    Map<String, Long> chunksAfterFirst = under(afterFirst, namespacePacks);
    assertThat(first.getStatus().archive.sizeBytes).as("logical size").isGreaterThan(MEMORY_MIB * (long) MIB);
    assertThat(first.getStatus().archive.newBytes).as("the first checkpoint stores all its memory")
        .isGreaterThan(MEMORY_MIB * (long) MIB)
        .isEqualTo(chunksAfterFirst.values().stream().mapToLong(Long::longValue).sum()
            + bytesUnder(afterFirst, layout(first).prefix()) - manifestBytes(afterFirst, first));
    assertThat(chunksAfterFirst.keySet()).as("about 520 chunks of 128 KiB in 16 MiB packs, each with its index")
        .hasSizeBetween(8, 12)
        .allMatch(key -> ArchiveLayout.ofPackKey(key).isPresent());
    assertThat(under(afterFirst, ArchiveLayout.chunkPrefix(cluster.namespace()))).as("no loose chunks").isEmpty();

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
    Map<String, Long> newChunks = under(appeared, namespacePacks);
    assertThat(appeared.keySet()).as("only a new pack, its index and the second checkpoint's own objects appeared")
        .allMatch(key -> key.startsWith(namespacePacks) || key.startsWith(layout(second).prefix()));
    assertThat(second.getStatus().archive.newBytes).as("the second checkpoint uploads the rewritten memory only")
        .isLessThan(MEMORY_MIB * (long) MIB * 15 / 100)
        .isGreaterThan(4L * MIB)
        .isEqualTo(newChunks.values().stream().mapToLong(Long::longValue).sum()
            + bytesUnder(afterSecond, layout(second).prefix()) - manifestBytes(afterSecond, second));
    assertThat(second.getStatus().archive.sizeBytes).isGreaterThan(MEMORY_MIB * (long) MIB);
    assertThat(newChunks.keySet()).as("4 MiB of new chunks: one pack and its index")
        .hasSize(2).anyMatch(key -> key.endsWith(".pack")).anyMatch(key -> key.endsWith(".idx"));
    counter.close();

    beforeRestores.run();
    restoreExactly(prefix + "-1", out, before1, after1, sumFirst);
    restoreExactly(prefix + "-2", out, before2, after2, sumSecond);
    return chunksAfterFirst;
  }

  /**
   * A chunk is known by its name, its place in the chunk index is a hint: moved to another pack as the
   * collector's repack moves it, it is found through that pack's index; altered, swapped, in no pack
   * at all, or with the chunk index altered, the restore fails before CRIU sees a byte.
   */
  @Test
  void aMovedChunkIsFoundThroughThePackIndexesAndATamperedOrMissingOneFailsTheRestoreBeforeCriuRuns()
      throws Exception {
    String storage = dedupStorage(false);
    Path out = cluster.dir().resolve("tamper-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("memcounter", "16", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    String sum = Workloads.memorySum(counter.pid(), out, TIMEOUT);
    long before = Workloads.count(out);
    Checkpoint checkpoint = cluster.awaitCheckpoint(cluster.createCheckpoint("tampered", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after = Workloads.count(out);
    counter.close();
    String ns = cluster.namespace();
    try (ObjectStore store = cluster.openStorage(storage)) {
      // Whole blocks of the incompressible memory, stored raw: a flipped byte is the chunk's own bytes changed.
      List<ChunkIndex.ChunkRef> raw = chunkRefs(store, checkpoint).stream()
          .filter(c -> c.storedBytes() == 128 * 1024 + 1).toList();
      ChunkIndex.ChunkRef victim = raw.get(raw.size() / 2);
      ChunkIndex.ChunkRef other = raw.get(raw.size() / 2 + 1);
      String packId = victim.location().packId();
      String pack = ArchiveLayout.packKey(ns, packId);
      byte[] original = store.read(pack);
      int at = Math.toIntExact(victim.location().offset());

      byte[] flipped = original.clone();
      flipped[at + victim.storedBytes() / 2] ^= 1;
      store.put(pack, flipped);
      assertRestoreFails("altered", "ArchiveNotAuthentic", "holds other bytes than its name says");

      byte[] swapped = original.clone();
      byte[] otherObject = other.location().packId().equals(packId)
          ? Arrays.copyOfRange(original, Math.toIntExact(other.location().offset()),
              Math.toIntExact(other.location().offset()) + other.storedBytes())
          : store.readRange(ArchiveLayout.packKey(ns, other.location().packId()), other.location().offset(),
              other.storedBytes());
      System.arraycopy(otherObject, 0, swapped, at, otherObject.length);
      store.put(pack, swapped);
      assertRestoreFails("swapped", "ArchiveNotAuthentic", "chunk " + victim.name());

      // Repacked as the collector does: the same chunks under a new pack id with its own index, then the old index and pack deleted.
      store.put(pack, original);
      PackIndex.Key key = packIndexKey(storage, ns);
      PackIndex index = PackIndex.read(key, packId, store.read(ArchiveLayout.packIndexKey(ns, packId)));
      String movedId = "0f".repeat(16);
      store.put(ArchiveLayout.packKey(ns, movedId), original);
      store.put(ArchiveLayout.packIndexKey(ns, movedId), new PackIndex(index.keyId(), movedId, index.entries()).encode(key));
      store.delete(List.of(ArchiveLayout.packIndexKey(ns, packId), pack));
      restoreExactly("tampered", out, before, after, sum);

      store.delete(List.of(ArchiveLayout.packIndexKey(ns, movedId), ArchiveLayout.packKey(ns, movedId)));
      assertRestoreFails("missing", "ArchiveMissing", "no pack index of the namespace lists it");

      store.put(pack, original);
      store.put(ArchiveLayout.packIndexKey(ns, packId), index.encode(key));
      String chunkIndex = layout(checkpoint).chunkIndexKey();
      byte[] indexBytes = store.read(chunkIndex);
      indexBytes[indexBytes.length - 10] ^= 1;
      store.put(chunkIndex, indexBytes);
      assertRestoreFails("index", "ArchiveCorrupted", "the chunk index");
    }
  }

  /**
   * Anyone who can write the bucket could make a checkpoint skip chunks by forging a pack index: one
   * whose HMAC fails is not used, its chunks are stored again, and a Warning names it.
   */
  @Test
  void aPackIndexThatIsNotAuthenticIsNotTrustedAndItsChunksAreStoredAgainWithAWarning() throws Exception {
    String storage = dedupStorage(false);
    Path out = cluster.dir().resolve("forged-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("memcounter", "16", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    cluster.awaitCheckpoint(cluster.createCheckpoint("forged-1", counter.pid(), storage, null), CheckpointPhase.Completed);
    String forged;
    try (ObjectStore store = cluster.openStorage(storage)) {
      List<String> indexes = store.list(ArchiveLayout.packPrefix(cluster.namespace())).stream().map(StoredObject::key)
          .filter(k -> k.endsWith(".idx")).toList();
      assertThat(indexes).isNotEmpty();
      for (String index : indexes) {
        byte[] bytes = store.read(index);
        bytes[bytes.length - 40] ^= 1;
        store.put(index, bytes);
      }
      forged = indexes.get(0);
    }
    String sum = Workloads.memorySum(counter.pid(), out, TIMEOUT);
    long before = Workloads.count(out);
    Checkpoint second = cluster.awaitCheckpoint(cluster.createCheckpoint("forged-2", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after = Workloads.count(out);
    counter.close();

    assertThat(second.getStatus().archive.newBytes).as("all its memory stored again").isGreaterThan(16L * MIB);
    await().atMost(TIMEOUT).until(() -> cluster.client().v1().events().inNamespace(cluster.namespace()).list().getItems()
        .stream().anyMatch(e -> "PackIndexUntrusted".equals(e.getReason()) && "Warning".equals(e.getType())
            && e.getMessage().contains(forged) && e.getMessage().contains("not authentic")));
    restoreExactly("forged-2", out, before, after, sum);
  }

  /**
   * A namespace stored as the previous release stored it (one object per chunk, a version 1 chunk
   * index): its checkpoint restores, and the next checkpoint refers to those loose chunks instead of
   * storing them again.
   */
  @Test
  void aCheckpointStoredAsLooseChunksRestoresAndTheNextCheckpointReusesThem() throws Exception {
    String storage = dedupStorage(false);
    Path out = cluster.dir().resolve("loose-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("memcounter", "16", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    String sum1 = Workloads.memorySum(counter.pid(), out, TIMEOUT);
    long before1 = Workloads.count(out);
    Checkpoint first = cluster.awaitCheckpoint(cluster.createCheckpoint("loose-1", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after1 = Workloads.count(out);
    int looseChunks = toLooseChunks(storage, first);

    String sum2 = Workloads.memorySum(counter.pid(), out, TIMEOUT);
    long before2 = Workloads.count(out);
    Checkpoint second = cluster.awaitCheckpoint(cluster.createCheckpoint("loose-2", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after2 = Workloads.count(out);
    counter.close();
    try (ObjectStore store = cluster.openStorage(storage)) {
      List<ChunkIndex.ChunkRef> refs = chunkRefs(store, second);
      assertThat(refs.stream().filter(c -> c.location().loose()).count()).as("loose chunks referred to")
          .isGreaterThan(looseChunks * 9L / 10);
      assertThat(store.list(ArchiveLayout.chunkPrefix(cluster.namespace()))).as("no loose chunk written")
          .hasSize(looseChunks);
    }
    assertThat(second.getStatus().archive.newBytes).as("only what changed").isLessThan(4L * MIB);

    restoreExactly("loose-1", out, before1, after1, sum1);
    restoreExactly("loose-2", out, before2, after2, sum2);
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



  /** The chunks a checkpoint's chunk index lists, in order. */
  private static List<ChunkIndex.ChunkRef> chunkRefs(ObjectStore store, Checkpoint checkpoint) throws Exception {
    List<ChunkIndex.ChunkRef> refs = new ArrayList<>();
    ChunkIndex.read(new ByteArrayInputStream(store.read(layout(checkpoint).chunkIndexKey())),
        (image, chunk) -> refs.add(chunk));
    return refs;
  }

  /** The key that authenticates pack indexes of a storage that does not encrypt: from its chunk secret. */
  private static PackIndex.Key packIndexKey(String storage, String namespace) throws Exception {
    ChunkKey key = chunkKey(storage, namespace);
    return PackIndex.Key.forNamespace(key.bytes(), key.keyId(), namespace);
  }

  private static ChunkKey chunkKey(String storage, String namespace) throws Exception {
    CheckpointStorage resource = cluster.client().resources(CheckpointStorage.class).withName(storage).get();
    return ChunkKey.of(new ChunkSecrets(cluster.client()).find(resource, ChunkSecrets.KEY_ID).orElseThrow(), namespace);
  }

  /**
   * Rewrites a checkpoint as the previous release stored it: every packed chunk of its namespace
   * an object of its own, no packs, its chunk index version 1; its manifest and the Checkpoint's
   * recorded manifest sha256 follow. Returns the loose chunks written.
   */
  private static int toLooseChunks(String storage, Checkpoint checkpoint) throws Exception {
    String ns = checkpoint.getMetadata().getNamespace();
    int written = 0;
    try (ObjectStore store = cluster.openStorage(storage)) {
      PackIndex.Key key = packIndexKey(storage, ns);
      for (StoredObject object : store.list(ArchiveLayout.packPrefix(ns))) {
        var pack = ArchiveLayout.ofPackKey(object.key()).orElseThrow();
        if (!pack.index()) {
          continue;
        }
        byte[] packBytes = store.read(ArchiveLayout.packKey(ns, pack.packId()));
        for (PackIndex.Entry entry : PackIndex.read(key, pack.packId(), store.read(object.key())).entries()) {
          int from = Math.toIntExact(entry.offset());
          store.put(ArchiveLayout.chunkKey(ns, entry.name()), Arrays.copyOfRange(packBytes, from, from + entry.storedBytes()));
          written++;
        }
        store.delete(List.of(object.key(), ArchiveLayout.packKey(ns, pack.packId())));
      }
      ArchiveLayout layout = layout(checkpoint);
      byte[] versionOne = versionOneIndex(store.read(layout.chunkIndexKey()), store,
          ChunkObjects.forNamespace(chunkKey(storage, ns), ns, false, true), ns);
      store.put(layout.chunkIndexKey(), versionOne);
      Manifest manifest = Manifest.fromJson(store.read(layout.manifestKey()));
      manifest.chunks.indexSha256 = Sha256.hexOf(versionOne);
      manifest.chunks.indexBytes = (long) versionOne.length;
      byte[] manifestBytes = manifest.toJson();
      store.put(layout.manifestKey(), manifestBytes);
      Checkpoint recorded = cluster.checkpoint(checkpoint.getMetadata().getName());
      recorded.getStatus().archive.manifestSha256 = Sha256.hexOf(manifestBytes);
      cluster.client().resource(recorded).updateStatus();
    }
    return written;
  }

  /**
   * A chunk index as version 1 wrote it: the same records, chunks without a location, each image's
   * end with its sha256 (of the loose chunks {@code objects} opens), which a restore still checks.
   */
  private static byte[] versionOneIndex(byte[] index, ObjectStore store, ChunkObjects objects, String ns)
      throws Exception {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(bytes);
    out.write("STSI".getBytes(StandardCharsets.US_ASCII));
    out.writeByte(1);
    int[] images = {0};
    MessageDigest image = MessageDigest.getInstance("SHA-256");
    ChunkIndex.read(new ByteArrayInputStream(index), new ChunkIndex.Visitor() {
      @Override
      public void image(String fileName) throws IOException {
        out.writeByte(1);
        out.writeShort(fileName.length());
        out.write(fileName.getBytes(StandardCharsets.US_ASCII));
      }

      @Override
      public void chunk(String fileName, ChunkIndex.ChunkRef chunk) throws IOException {
        out.writeByte(2);
        out.write(HexFormat.of().parseHex(chunk.name()));
        out.writeInt(chunk.bytes());
        out.writeInt(chunk.storedBytes());
        image.update(objects.open(chunk.name(), store.read(ArchiveLayout.chunkKey(ns, chunk.name())), chunk.bytes()));
      }

      @Override
      public void imageEnd(String fileName, long sizeBytes, String sha256) throws IOException {
        out.writeByte(3);
        out.writeLong(sizeBytes);
        out.write(image.digest());
        images[0]++;
      }
    });
    out.writeByte(0);
    out.writeInt(images[0]);
    return bytes.toByteArray();
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
