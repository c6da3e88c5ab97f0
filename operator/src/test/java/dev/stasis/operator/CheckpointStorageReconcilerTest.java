package dev.stasis.operator;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Conditions;
import dev.stasis.api.EncryptionSpec;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.SecretReference;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.kube.CheckpointLifecycle;
import dev.stasis.kube.ChunkSecrets;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.NodeKey;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.StorageBinding;
import dev.stasis.operator.retention.ChunkSweepLock;
import dev.stasis.operator.retention.StorageGarbageCollector;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.testing.DeduplicatedCheckpoints;
import dev.stasis.testing.GitOpsConditions;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.TestingClock;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Storage checks, garbage collection and archive clean-up, on the CRUD mock and a real directory. */
@EnableKubernetesMockClient(crud = true)
class CheckpointStorageReconcilerTest {
  static final String NS = "jobs";
  static final Duration INTERVAL = Duration.ofMinutes(10);

  KubernetesClient client;
  TestingClock clock;
  CheckpointStorageReconciler reconciler;
  ChunkSweepLock chunkLock;
  @TempDir Path root;
  /** The agent's work folder on node-a, where its grant key lives. */
  @TempDir Path agentWorkDir;
  FileSystemObjectStore files;

  @BeforeEach
  void setUp() {
    clock = new TestingClock(Instant.now());
    chunkLock = new ChunkSweepLock(ChunkSweepLock.DRAIN_AFTER, clock);
    reconciler = new CheckpointStorageReconciler(client, new EventRecorder(client, "operator", "test"), chunkLock,
        INTERVAL, clock);
    files = new FileSystemObjectStore(root);
  }

  @Test
  void removesObjectsOfCheckpointsThatNoLongerExistAndCountsThem() throws IOException {
    CheckpointStorage storage = storage("1h");
    Checkpoint live = checkpoint("live", false);
    archive(new ArchiveLayout(NS, "live", live.getMetadata().getUid()));
    ArchiveLayout gone = new ArchiveLayout(NS, "gone", "22222222-2222-2222-2222-222222222222");
    archive(gone);

    clock.now = Instant.now().plus(Duration.ofMinutes(55));
    storage = reconcile(storage);
    assertThat(storage.getStatus().garbageCollectedObjects).isZero();
    assertThat(files.list(gone.prefix())).hasSize(2);

    // the grace period is over, but the last collection was only 7 minutes ago
    clock.now = Instant.now().plus(Duration.ofMinutes(62));
    storage = reconcile(storage);
    assertThat(storage.getStatus().garbageCollectedObjects).as("not due again yet").isZero();

    clock.now = Instant.now().plus(Duration.ofMinutes(66));
    storage = reconcile(storage);
    assertThat(storage.getStatus().garbageCollectedObjects).isEqualTo(2);
    assertThat(storage.getStatus().lastGarbageCollectionTime).isNotNull();
    assertThat(files.list(gone.prefix())).isEmpty();
    assertThat(files.list(NS + "/live-")).hasSize(2);
    assertThat(client.v1().events().inNamespace("default").list().getItems()).anyMatch(e ->
        e.getReason().equals("GarbageCollected") && e.getMessage().contains("removed 2 objects")
            && e.getMessage().contains(gone.prefix()));
  }

  /**
   * The Stasis of another cluster stores its checkpoints in the same place: its mark pauses this
   * cluster's collector, which says why on the storage, once as an Event; this cluster marks it too.
   */
  @Test
  void aStorageAnotherClusterUsesIsNotCollected() throws IOException {
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("kube-system").endMetadata()
        .build()).create();
    String thisCluster = client.namespaces().withName("kube-system").get().getMetadata().getUid();
    CheckpointStorage storage = storage("1h");
    ArchiveLayout theirs = new ArchiveLayout(NS, "theirs", "22222222-2222-2222-2222-222222222222");
    archive(theirs);
    StorageGarbageCollector.markUsedBy(files, "other-cluster");

    clock.now = Instant.now().plus(Duration.ofDays(1));
    storage = reconcile(storage);
    clock.now = clock.now.plus(Duration.ofHours(1));
    storage = reconcile(storage);

    assertThat(files.list(theirs.prefix())).hasSize(2);
    assertThat(files.exists(StorageGarbageCollector.CLUSTER_MARKERS + thisCluster)).as("marked by this cluster").isTrue();
    assertThat(storage.getStatus().phase).isEqualTo(CheckpointStorageStatus.AVAILABLE);
    assertThat(storage.getStatus().conditions).anySatisfy(c -> {
      assertThat(c.getType()).isEqualTo("GarbageCollection");
      assertThat(c.getStatus()).isEqualTo("False");
      assertThat(c.getReason()).isEqualTo("StorageShared");
      assertThat(c.getMessage()).contains(root + "/" + StorageGarbageCollector.CLUSTER_MARKERS + "other-cluster")
          .contains("Give each cluster its own bucket or spec.s3.prefix");
    });
    assertThat(client.v1().events().inNamespace("default").list().getItems())
        .filteredOn(e -> e.getReason().equals("StorageShared")).hasSize(1);
  }

  @Test
  void garbageCollectionCanBeTurnedOff() throws IOException {
    CheckpointStorage storage = storage("1h");
    storage.getSpec().garbageCollection.enabled = false;
    storage = client.resource(storage).update();
    ArchiveLayout gone = new ArchiveLayout(NS, "gone", "22222222-2222-2222-2222-222222222222");
    archive(gone);
    clock.now = Instant.now().plus(Duration.ofDays(1));
    reconcile(storage);
    assertThat(files.list(gone.prefix())).hasSize(2);
  }

  @Test
  void deletingACheckpointDeletesItsArchive() throws IOException {
    storage("1h");
    Checkpoint c = checkpoint("c", false);
    ArchiveLayout layout = new ArchiveLayout(NS, "c", c.getMetadata().getUid());
    archive(layout);
    checkpointReconciler().cleanup(c, null);
    assertThat(files.list(layout.prefix())).isEmpty();
  }

  @Test
  void aRetainedArchiveIsMarkedSoThatTheGarbageCollectorKeepsIt() throws IOException {
    CheckpointStorage storage = storage("1h");
    Checkpoint c = checkpoint("c", true);
    ArchiveLayout layout = new ArchiveLayout(NS, "c", c.getMetadata().getUid());
    archive(layout);
    checkpointReconciler().cleanup(c, null);
    client.resource(c).delete();
    assertThat(new String(files.read(layout.retainedMarkerKey()), StandardCharsets.UTF_8))
        .contains("kept when Checkpoint jobs/c was deleted");
    clock.now = Instant.now().plus(Duration.ofDays(1));
    reconcile(storage);
    assertThat(files.list(layout.prefix())).hasSize(3);
  }

  @Test
  void aFilesystemPathThatCannotBeWrittenSaysSo() throws IOException {
    Files.writeString(root.resolve("taken"), "a file where the storage's folder should be");
    assertCheckedUnavailable(filesystem(root.resolve("taken/checkpoints")), "filesystem storage " + root.resolve("taken/checkpoints")
        + " is not writable");
  }

  @Test
  void aCredentialsSecretThatDoesNotExistIsNamed() {
    assertCheckedUnavailable(s3("http://127.0.0.1:9", "b", "missing"),
        "Secret default/missing named by CheckpointStorage 'store' does not exist");
  }

  @Test
  void aCredentialsSecretWithoutTheKeysSaysWhichItNeeds() {
    client.resource(new SecretBuilder().withNewMetadata().withName("wrong-keys").withNamespace("default").endMetadata()
        .addToStringData("user", "u").build()).create();
    assertCheckedUnavailable(s3("http://127.0.0.1:9", "b", "wrong-keys"),
        "Secret default/wrong-keys of CheckpointStorage 'store' must hold the keys " + StorageBinding.ACCESS_KEY_ID
            + " and " + StorageBinding.SECRET_ACCESS_KEY);
  }

  @Test
  void aBucketThatDoesNotExistOrCredentialsS3RefusesAreNamed() throws Exception {
    try (S3Server s3 = S3Server.start()) {
      s3.createBucket("there");
      secret("right", s3.accessKey(), s3.secretKey());
      assertCheckedUnavailable(s3(s3.endpoint(), "not-there", "right"), "bucket not-there does not exist at " + s3.endpoint());
      client.resources(CheckpointStorage.class).withName("store").delete();
      secret("wrong", s3.accessKey(), "not-the-secret-key");
      assertCheckedUnavailable(s3(s3.endpoint(), "there", "wrong"), "access denied to bucket there: check the credentials Secret");
    }
  }

  /** Creates and checks {@code storage}: it must end Unavailable, saying {@code message}, with a Warning Event. */
  private void assertCheckedUnavailable(CheckpointStorage storage, String message) {
    CheckpointStorage checked = reconcile(client.resource(storage).create());
    assertThat(checked.getStatus().phase).isEqualTo("Unavailable");
    assertThat(checked.getStatus().reason).isEqualTo("StorageUnavailable");
    assertThat(checked.getStatus().message).contains(message);
    GitOpsConditions.assertStalled(checked.getStatus(), "StorageUnavailable", 1);
    assertThat(client.v1().events().inNamespace("default").list().getItems()).anyMatch(e ->
        e.getReason().equals("StorageUnavailable") && e.getType().equals("Warning") && e.getMessage().contains(message));
  }

  private static CheckpointStorage filesystem(Path path) {
    return TestStorage.filesystem("store", path).generation(1).build();
  }

  private static CheckpointStorage s3(String endpoint, String bucket, String secret) {
    return TestStorage.s3("store", endpoint, bucket).generation(1)
        .with(spec -> spec.s3.credentialsSecret = new SecretReference(secret, "default")).build();
  }

  private void secret(String name, String accessKey, String secretKey) {
    client.resource(new SecretBuilder().withNewMetadata().withName(name).withNamespace("default").endMetadata()
        .addToStringData(StorageBinding.ACCESS_KEY_ID, accessKey)
        .addToStringData(StorageBinding.SECRET_ACCESS_KEY, secretKey).build()).create();
  }

  @Test
  void anEncryptingStorageIsAvailableOnlyWithAUsableCurrentKey() {
    CheckpointStorage storage = storage("1h");
    storage.getSpec().encryption = new EncryptionSpec(new SecretReference("archive-keys", NS), "k2");
    storage = client.resource(storage).update();

    String missing = "Secret jobs/archive-keys named by CheckpointStorage 'store' does not exist;"
        + " create it with the archive encryption keys";
    assertUnavailable(reconcile(storage), missing);
    assertThat(client.v1().events().inNamespace("default").list().getItems())
        .anyMatch(e -> "Warning".equals(e.getType()) && "EncryptionKeyUnavailable".equals(e.getReason())
            && e.getMessage().startsWith(missing));

    keySecret(Map.of("k1", new byte[32], "k2", new byte[16]));
    assertUnavailable(reconcile(storage), "key 'k2' in Secret jobs/archive-keys of CheckpointStorage 'store' is 16 bytes:"
        + " an AES-256 key is 32 random bytes");

    keySecret(Map.of("k1", new byte[32]));
    assertUnavailable(reconcile(storage), "Secret jobs/archive-keys of CheckpointStorage 'store' holds no key 'k2'"
        + " (spec.encryption.currentKeyId); it holds k1");

    // base64 text of 32 bytes, as openssl rand -base64 32 prints it, is a key too
    keySecret(Map.of("k1", new byte[32],
        "k2", (Base64.getEncoder().encodeToString(new byte[32]) + "\n").getBytes(StandardCharsets.US_ASCII)));
    storage = reconcile(storage);
    assertThat(storage.getStatus().phase).isEqualTo("Available");
    assertThat(storage.getStatus().message).endsWith("archives are encrypted with key 'k2'");
    GitOpsConditions.assertReady(storage.getStatus(), "Checked", storage.getMetadata().getGeneration());
  }

  @Test
  void aCheckpointOnAStorageWithoutItsKeyFailsWithTheStoragesReason() {
    CheckpointStorage storage = storage("1h");
    storage.getSpec().encryption = new EncryptionSpec(new SecretReference("archive-keys", NS), "k1");
    reconcile(client.resource(storage).update());
    NodeProfile node = new NodeProfile();
    node.setMetadata(new ObjectMetaBuilder().withName("node-a").build());
    node.setSpec(new NodeProfileSpec());
    client.resource(node).create();
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName("c").withNamespace(NS).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", 99)));
    c.getSpec().storage = "store";
    c = client.resource(c).create();

    checkpointReconciler().reconcile(c, null);

    Checkpoint failed = client.resource(c).get();
    assertThat(failed.getStatus().phase).isEqualTo(CheckpointPhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("EncryptionKeyUnavailable");
    assertThat(failed.getStatus().message).contains("Secret jobs/archive-keys named by CheckpointStorage 'store' does not exist");
  }

  private void assertUnavailable(CheckpointStorage storage, String message) {
    assertThat(storage.getStatus().phase).isEqualTo("Unavailable");
    assertThat(storage.getStatus().reason).isEqualTo("EncryptionKeyUnavailable");
    assertThat(storage.getStatus().message).startsWith(message);
    GitOpsConditions.assertStalled(storage.getStatus(), "EncryptionKeyUnavailable", storage.getMetadata().getGeneration());
  }

  private void keySecret(Map<String, byte[]> keys) {
    Map<String, String> data = new java.util.TreeMap<>();
    keys.forEach((id, bytes) -> data.put(id, Base64.getEncoder().encodeToString(bytes)));
    client.resource(new SecretBuilder().withNewMetadata().withName("archive-keys").withNamespace(NS).endMetadata()
        .withData(data).build()).createOr(r -> r.update());
  }

  /**
   * While the storage sweeps the namespace's chunks, a new Checkpoint of the namespace is not
   * assigned (it would get the key to write chunks): it waits, Pending with the reason, without
   * an Event, and is assigned once the sweep has ended. Another namespace's Checkpoint goes on.
   */
  @Test
  void aCheckpointWaitsWhileItsStorageSweepsItsNamespace() throws IOException {
    deduplicating(storage("1h"));
    nodeProfile();
    ChunkSweepLock.Held sweep = (ChunkSweepLock.Held) chunkLock.tryHold(new ChunkSweepLock.Scope("store", NS), List::of);
    Checkpoint c = newCheckpoint(NS, "c");
    CheckpointReconciler checkpoints = checkpointReconciler();

    checkpoints.reconcile(client.resource(c).get(), null);
    checkpoints.reconcile(client.resource(c).get(), null);

    Checkpoint waiting = client.resource(c).get();
    assertThat(waiting.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
    assertThat(waiting.getStatus().node).isNull();
    assertThat(waiting.getStatus().reason).isEqualTo(CheckpointLifecycle.WAITING_FOR_CHUNK_COLLECTION);
    assertThat(waiting.getStatus().message).isEqualTo("waiting for CheckpointStorage 'store' to finish collecting the"
        + " unreferenced chunks of namespace jobs: no checkpoint of the namespace writes chunks there meanwhile; it goes"
        + " on by itself");
    assertThat(waiting.getStatus().conditions).anySatisfy(condition -> {
      assertThat(condition.getType()).isEqualTo(CheckpointLifecycle.WAITING_FOR_CHUNK_COLLECTION);
      assertThat(condition.getStatus()).isEqualTo("True");
    });
    client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("other").endMetadata().build())
        .create();
    Checkpoint elsewhere = newCheckpoint("other", "e");
    checkpoints.reconcile(client.resource(elsewhere).get(), null);
    assertThat(client.resource(elsewhere).get().getStatus().node).as("another namespace's chunks are not swept")
        .isEqualTo("node-a");

    sweep.close();
    checkpoints.reconcile(client.resource(c).get(), null);

    Checkpoint assigned = client.resource(c).get();
    assertThat(assigned.getStatus().node).isEqualTo("node-a");
    assertThat(assigned.getStatus().reason).isNull();
    assertThat(assigned.getStatus().conditions)
        .noneMatch(condition -> condition.getType().equals(CheckpointLifecycle.WAITING_FOR_CHUNK_COLLECTION));
    assertThat(client.v1().events().inAnyNamespace().list().getItems()).as("waiting is no news")
        .noneMatch(e -> e.getReason().equals(CheckpointLifecycle.WAITING_FOR_CHUNK_COLLECTION));
  }

  /**
   * A Checkpoint of the namespace in flight holds the sweep of its chunks off: a chunk no manifest
   * refers to stays until it has ended, and goes at the next collection. The storage's status
   * shows what it holds and the ratio.
   */
  @Test
  void aSweepWaitsWhileACheckpointOfTheNamespaceIsInFlight() throws IOException {
    CheckpointStorage storage = storage("1h");
    Checkpoint done = completed(checkpoint("done", false));
    byte[] shared = new byte[4096];
    var first = DeduplicatedCheckpoints.write(files, new ArchiveLayout(NS, "done", done.getMetadata().getUid()),
        List.of(shared, shared, shared, shared), Set.of());
    String unreferenced = storedChunkOf(new byte[] {1, 2, 3});
    Checkpoint running = running("running");

    clock.now = Instant.now().plus(Duration.ofHours(2));
    storage = reconcile(storage);
    assertThat(DeduplicatedCheckpoints.storedChunks(files, NS)).as("held off by the running checkpoint")
        .contains(unreferenced);
    CheckpointStorageStatus.Usage usage = storage.getStatus().usage;
    assertThat(usage.chunks).isEqualTo(2);
    assertThat(usage.manifests).isEqualTo(1);
    assertThat(usage.referencedBytes).isEqualTo(4 * 4096 + first.archiveBytes());
    assertThat(usage.storedBytes).isEqualTo(files.list(NS + "/").stream().mapToLong(o -> o.sizeBytes()).sum());
    assertThat(usage.deduplicationRatio).isEqualTo(BigDecimal.valueOf(usage.referencedBytes)
        .divide(BigDecimal.valueOf(usage.storedBytes), 2, RoundingMode.HALF_UP).toPlainString());
    assertThat(Double.parseDouble(usage.deduplicationRatio)).as("four copies of a chunk stored once").isGreaterThan(2.5);
    assertThat(usage.observedGeneration).isEqualTo(storage.getMetadata().getGeneration());
    assertThat(usage.computedAt).isEqualTo(storage.getStatus().lastGarbageCollectionTime);

    running.getStatus().phase = CheckpointPhase.Completed;
    client.resource(running).updateStatus();
    clock.now = clock.now.plus(INTERVAL);
    storage = reconcile(storage);
    assertThat(DeduplicatedCheckpoints.storedChunks(files, NS))
        .containsExactlyInAnyOrderElementsOf(Set.copyOf(first.chunks()));
    assertThat(storage.getStatus().usage.chunks).isEqualTo(1);
    assertThat(storage.getStatus().garbageCollectedObjects).isEqualTo(1);
    assertThat(client.v1().events().inNamespace("default").list().getItems()).anyMatch(e ->
        e.getReason().equals("GarbageCollected")
            && e.getMessage().contains("1 chunks (3 bytes) that no manifest refers to"));
  }

  /**
   * A namespace always busy with checkpoints is swept all the same: once its sweeps have been held
   * off for {@link ChunkSweepLock#DRAIN_AFTER}, new Checkpoints wait, and the sweep runs at the
   * next storage check after the ones in flight have ended.
   */
  @Test
  void aNamespaceHeldOffLongDrainsForItsSweep() throws IOException {
    CheckpointStorage storage = deduplicating(storage("1h"));
    nodeProfile();
    String unreferenced = storedChunkOf(new byte[] {1, 2, 3});
    Checkpoint running = running("running");
    clock.now = Instant.now().plus(Duration.ofHours(2));
    storage = reconcile(storage);
    for (Duration heldOff = Duration.ZERO; heldOff.compareTo(ChunkSweepLock.DRAIN_AFTER) < 0;
        heldOff = heldOff.plus(INTERVAL)) {
      clock.now = clock.now.plus(INTERVAL);
      storage = reconcile(storage);
    }
    assertThat(DeduplicatedCheckpoints.storedChunks(files, NS)).contains(unreferenced);

    Checkpoint next = newCheckpoint(NS, "next");
    CheckpointReconciler checkpoints = checkpointReconciler();
    checkpoints.reconcile(client.resource(next).get(), null);
    assertThat(client.resource(next).get().getStatus().reason)
        .isEqualTo(CheckpointLifecycle.WAITING_FOR_CHUNK_COLLECTION);

    running.getStatus().phase = CheckpointPhase.Completed;
    client.resource(running).updateStatus();
    clock.now = clock.now.plus(Duration.ofMinutes(1)); // a storage check, not a collection interval, later
    storage = reconcile(storage);
    assertThat(DeduplicatedCheckpoints.storedChunks(files, NS)).isEmpty();
    checkpoints.reconcile(client.resource(next).get(), null);
    assertThat(client.resource(next).get().getStatus().node).isEqualTo("node-a");
  }

  /**
   * A chunk index altered in the storage stops the sweep of its namespace: every chunk stays, the
   * storage's GarbageCollection condition says which index and what to do, with one Event however
   * many collections find it so.
   */
  @Test
  void anAlteredChunkIndexStopsItsNamespacesSweepAndSaysSoOnce() throws IOException {
    CheckpointStorage storage = storage("1h");
    Checkpoint done = completed(checkpoint("done", false));
    var written = DeduplicatedCheckpoints.write(files, new ArchiveLayout(NS, "done", done.getMetadata().getUid()),
        List.of("a chunk".getBytes(StandardCharsets.UTF_8)), Set.of());
    String unreferenced = storedChunkOf(new byte[] {1, 2, 3});
    byte[] index = files.read(written.layout().chunkIndexKey());
    index[30] ^= 1; // a bit of the chunk's name: a well-formed index, not the one the manifest records
    files.put(written.layout().chunkIndexKey(), index);

    clock.now = Instant.now().plus(Duration.ofHours(2));
    storage = reconcile(storage);
    clock.now = clock.now.plus(INTERVAL);
    storage = reconcile(storage);

    assertThat(DeduplicatedCheckpoints.storedChunks(files, NS)).contains(unreferenced);
    assertThat(storage.getStatus().conditions).anySatisfy(c -> {
      assertThat(c.getType()).isEqualTo("GarbageCollection");
      assertThat(c.getStatus()).isEqualTo("False");
      assertThat(c.getReason()).isEqualTo("ChunkIndexInvalid");
      assertThat(c.getMessage()).startsWith("the chunks of namespace jobs are all kept: the chunk index file://" + root
          + "/" + written.layout().chunkIndexKey()).contains("it was altered or replaced");
    });
    assertThat(client.v1().events().inNamespace("default").list().getItems())
        .filteredOn(e -> e.getReason().equals("ChunkIndexInvalid")).hasSize(1);
  }

  /**
   * Deleting a deduplicated Checkpoint deletes its manifest, index and archive; its chunks go at
   * the next collection once no manifest refers to them. A retained one keeps its manifest, hence
   * its chunks, and what it shares keeps the other's.
   */
  @Test
  void deletedCheckpointsChunksGoAndRetainedOnesStay() throws IOException {
    CheckpointStorage storage = storage("1h");
    Checkpoint gone = completed(checkpoint("gone", false));
    Checkpoint kept = completed(checkpoint("kept", true));
    byte[] shared = "in both".getBytes(StandardCharsets.UTF_8);
    var goneWritten = DeduplicatedCheckpoints.write(files, new ArchiveLayout(NS, "gone", gone.getMetadata().getUid()),
        List.of(shared, "only in gone".getBytes(StandardCharsets.UTF_8)), Set.of());
    var keptWritten = DeduplicatedCheckpoints.write(files, new ArchiveLayout(NS, "kept", kept.getMetadata().getUid()),
        List.of(shared, "only in kept".getBytes(StandardCharsets.UTF_8)), Set.of(goneWritten.chunks().get(0)));

    checkpointReconciler().cleanup(gone, null);
    checkpointReconciler().cleanup(kept, null);
    client.resource(gone).delete();
    client.resource(kept).delete();
    assertThat(files.list(goneWritten.layout().prefix())).isEmpty();
    assertThat(files.exists(keptWritten.layout().manifestKey())).isTrue();
    assertThat(files.exists(keptWritten.layout().retainedMarkerKey())).isTrue();

    clock.now = Instant.now().plus(Duration.ofHours(2));
    storage = reconcile(storage);

    assertThat(DeduplicatedCheckpoints.storedChunks(files, NS))
        .containsExactlyInAnyOrderElementsOf(Set.copyOf(keptWritten.chunks()));
    assertThat(storage.getStatus().usage.manifests).isEqualTo(1);
  }

  /**
   * Packs written with the chunk key a Checkpoint of the storage is granted: the collector checks
   * their indexes with the key it finds by the id they name, deletes the pack no manifest refers to
   * any more and counts the other in status.usage; an altered pack index stops the namespace's
   * sweep, and the condition names it.
   */
  @Test
  void packsOfTheGrantedChunkKeyAreCollectedAndAnAlteredPackIndexIsReported() throws Exception {
    CheckpointStorage storage = deduplicating(storage("1h"));
    Checkpoint gone = completed(checkpoint("gone", false));
    Checkpoint kept = completed(checkpoint("kept", false));
    ChunkKey key = new GrantIssuer(ClusterCache.reading(client), new StorageBinding(client), new ChunkSecrets(client),
        (s, c) -> true).chunkKeyFor(gone, storage).orElseThrow();
    Random random = new Random(3);
    var goneWritten = DeduplicatedCheckpoints.writePacked(files, new ArchiveLayout(NS, "gone",
        gone.getMetadata().getUid()), DeduplicatedCheckpoints.randomChunks(random, 3), Map.of(), key, false);
    String gonePack = DeduplicatedCheckpoints.packIds(files, NS).iterator().next();
    DeduplicatedCheckpoints.writePacked(files, new ArchiveLayout(NS, "kept", kept.getMetadata().getUid()),
        DeduplicatedCheckpoints.randomChunks(random, 3), Map.of(), key, false);
    String keptPack = DeduplicatedCheckpoints.packIds(files, NS).stream().filter(id -> !id.equals(gonePack)).findFirst()
        .orElseThrow();
    checkpointReconciler().cleanup(gone, null);
    client.resource(gone).delete();
    assertThat(files.exists(goneWritten.layout().manifestKey())).isFalse();

    clock.now = Instant.now().plus(Duration.ofHours(2));
    storage = reconcile(storage);

    assertThat(DeduplicatedCheckpoints.packIds(files, NS)).containsExactly(keptPack);
    assertThat(Conditions.find(storage.getStatus().conditions, "GarbageCollection").getStatus()).isEqualTo("True");
    long stored = files.list("").stream().filter(o -> o.key().startsWith(NS + "/")).mapToLong(o -> o.sizeBytes()).sum();
    assertThat(storage.getStatus().usage.storedBytes).isEqualTo(stored);
    assertThat(storage.getStatus().usage.chunks).isEqualTo(3);
    assertThat(client.v1().events().inNamespace("default").list().getItems())
        .filteredOn(e -> e.getReason().equals("GarbageCollected"))
        .anySatisfy(e -> assertThat(e.getMessage()).contains("1 packs that no manifest refers to"));

    String indexKey = ArchiveLayout.packIndexKey(NS, keptPack);
    byte[] index = files.read(indexKey);
    index[index.length - 1] ^= 1;
    files.put(indexKey, index);
    clock.now = clock.now.plus(INTERVAL);
    storage = reconcile(storage);
    assertThat(storage.getStatus().conditions).anySatisfy(c -> {
      assertThat(c.getType()).isEqualTo("GarbageCollection");
      assertThat(c.getStatus()).isEqualTo("False");
      assertThat(c.getReason()).isEqualTo("ChunkIndexInvalid");
      assertThat(c.getMessage()).contains("pack index file://" + root + "/" + indexKey).contains("not authentic")
          .contains("Put it back from a backup");
    });
  }

  private CheckpointReconciler checkpointReconciler() {
    return new CheckpointReconciler(client, ClusterCache.reading(client), new EventRecorder(client, "operator", "test"),
        RetryPolicy.DEFAULT, chunkLock);
  }

  /** Its Checkpoints are given the key to write chunks, through the sweep lock. */
  private CheckpointStorage deduplicating(CheckpointStorage storage) {
    storage.getSpec().deduplication = true;
    return client.resource(storage).update();
  }

  /** node-a, whose agent publishes a key to seal grants to (a chunk key is only ever granted sealed). */
  private void nodeProfile() throws IOException {
    NodeProfile node = new NodeProfile();
    node.setMetadata(new ObjectMetaBuilder().withName("node-a").build());
    node.setSpec(new NodeProfileSpec());
    node.getSpec().grantKey = NodeKey.inWorkDir(agentWorkDir).publicKey();
    client.resource(node).create();
  }

  /** A new process Checkpoint on node-a, to store in "store". */
  private Checkpoint newCheckpoint(String namespace, String name) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", 99)));
    c.getSpec().storage = "store";
    return client.resource(c).create();
  }

  /** A Checkpoint its agent is taking: in flight, with the key to write chunks to "store". */
  private Checkpoint running(String name) {
    Checkpoint c = checkpoint(name, false);
    c.getStatus().phase = CheckpointPhase.Running;
    return client.resource(c).updateStatus();
  }

  private Checkpoint completed(Checkpoint c) {
    c.getStatus().phase = CheckpointPhase.Completed;
    return client.resource(c).updateStatus();
  }

  /** A chunk in the namespace's chunk folder that no manifest refers to; its name. */
  private String storedChunkOf(byte[] bytes) throws IOException {
    String name = DeduplicatedCheckpoints.name(NS, bytes);
    files.put(ArchiveLayout.chunkKey(NS, name), bytes);
    return name;
  }

  private CheckpointStorage storage(String gracePeriod) {
    return TestStorage.filesystem("store", root).generation(1).with(spec -> {
      spec.garbageCollection = new CheckpointStorageSpec.GarbageCollection();
      spec.garbageCollection.gracePeriod = gracePeriod;
    }).create(client);
  }

  private Checkpoint checkpoint(String name, boolean retainArchive) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(NS).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process("node-a", 99)));
    c.getSpec().retainArchive = retainArchive;
    c = client.resource(c).create();
    c.setStatus(new CheckpointStatus());
    c.getStatus().storage = "store";
    return client.resource(c).updateStatus();
  }

  private void archive(ArchiveLayout layout) throws IOException {
    files.put(layout.prefix() + "archive.tar.zst", "images".getBytes(StandardCharsets.UTF_8));
    files.put(layout.manifestKey(), "{}".getBytes(StandardCharsets.UTF_8));
  }

  private CheckpointStorage reconcile(CheckpointStorage s) {
    reconciler.reconcile(client.resource(s).get(), null);
    return client.resource(s).get();
  }
}
