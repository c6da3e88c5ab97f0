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
import dev.stasis.api.EncryptionSpec;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.SecretReference;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.kube.ClusterCache;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.StorageBinding;
import dev.stasis.operator.retention.StorageGarbageCollector;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.testing.GitOpsConditions;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.TestingClock;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Map;
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
  @TempDir Path root;
  FileSystemObjectStore files;

  @BeforeEach
  void setUp() {
    clock = new TestingClock(Instant.now());
    reconciler = new CheckpointStorageReconciler(client, new EventRecorder(client, "operator", "test"), INTERVAL, clock);
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

  private CheckpointReconciler checkpointReconciler() {
    return new CheckpointReconciler(client, ClusterCache.reading(client), new EventRecorder(client, "operator", "test"),
        RetryPolicy.DEFAULT);
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
