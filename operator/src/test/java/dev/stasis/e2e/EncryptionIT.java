package dev.stasis.e2e;

import dev.stasis.testing.InProcessCluster;
import org.junit.jupiter.api.extension.RegisterExtension;
import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.EncryptionSpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.SecretReference;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.storage.ObjectStore;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Encryption at rest on real parts: the API server, operator and agent, real CRIU, and s3proxy
 * holding what an attacker with access to the bucket would see.
 */
class EncryptionIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  private static final String SECRETS_NAMESPACE = "default";
  private static final SecureRandom RANDOM = new SecureRandom();

  @Test
  void archivesAreEncryptedAndOldKeysStillRestoreAfterRotation() throws Exception {
    String storage = encryptedStorage(Map.of("k1", newKey()), "k1");
    Path out = cluster.dir().resolve("enc-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 5);

    long before = Workloads.count(out);
    Checkpoint old = cluster.awaitCheckpoint(cluster.createCheckpoint("old", counter.pid(), storage, null), CheckpointPhase.Completed);
    long after = Workloads.count(out);
    try (ObjectStore store = cluster.openStorage(storage)) {
      Manifest manifest = manifest(store, old);
      assertThat(manifest.archive.encryption.algorithm).isEqualTo("AES-256-GCM-STREAM");
      assertThat(manifest.archive.encryption.keyId).isEqualTo("k1");
      byte[] stored = store.read(manifest.archive.key);
      assertThat(stored).hasSize(manifest.archive.storedBytes.intValue());
      assertThat(new String(stored, 0, 4, StandardCharsets.US_ASCII)).isEqualTo("STSE");
      assertThat(new String(stored, StandardCharsets.ISO_8859_1))
          .as("no zstd frame, tar header or CRIU image name in the stored bytes")
          .doesNotContain("\u0028\u00b5\u002f\u00fd").doesNotContain("ustar").doesNotContain("pages-1.img");
      assertThat(bitsPerByte(stored)).as("the stored bytes look random").isGreaterThan(7.9);
    }

    counter.close();
    Restore first = cluster.awaitRestore(cluster.createRestore("old-1", "old"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(first.getStatus().restoredPid));
    Workloads.awaitCountingOnFrom(out, before, after, TIMEOUT);
    Workloads.kill(first.getStatus().restoredPid);
    await().atMost(TIMEOUT).until(() -> "Exited".equals(cluster.restore("old-1").getStatus().processState));

    // Rotation: a new key goes into the Secret and becomes current; k1 stays for the old archives.
    Map<String, byte[]> keys = new TreeMap<>(keySecret(storage));
    keys.put("k2", newKey());
    putKeySecret(storage, keys);
    editStorage(storage, s -> s.getSpec().encryption.currentKeyId = "k2");

    Path newOut = cluster.dir().resolve("enc-new-" + cluster.namespace() + ".txt");
    var second = cluster.track(Workloads.startInPidNamespace("counter", newOut.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(newOut) >= 2);
    Checkpoint fresh = cluster.awaitCheckpoint(cluster.createCheckpoint("new", second.pid(), storage, null), CheckpointPhase.Completed);
    try (ObjectStore store = cluster.openStorage(storage)) {
      assertThat(manifest(store, fresh).archive.encryption.keyId).isEqualTo("k2");
    }

    Restore again = cluster.awaitRestore(cluster.createRestore("old-2", "old"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(again.getStatus().restoredPid));
    Workloads.awaitCountingOnFrom(out, before, after, TIMEOUT); // the k1 checkpoint restores after rotation
    Workloads.kill(again.getStatus().restoredPid);
    await().atMost(TIMEOUT).until(() -> "Exited".equals(cluster.restore("old-2").getStatus().processState));

    // Dropping k1 from the Secret makes its archives unreadable, and the Restore says which key is missing.
    keys.remove("k1");
    putKeySecret(storage, keys);
    Restore lost = cluster.awaitRestore(cluster.createRestore("old-3", "old"), RestorePhase.Failed);
    assertThat(lost.getStatus().reason).isEqualTo("EncryptionKeyNotFound");
    assertThat(lost.getStatus().message).contains("encrypted with key 'k1', which Secret " + SECRETS_NAMESPACE + "/"
        + storage + "-keys of CheckpointStorage '" + storage + "' no longer holds (it holds k2)");
  }

  /**
   * The archive of checkpoint A copied over checkpoint B's, both encrypted with the storage's key k1.
   * Whoever can write the bucket alone is stopped by the sha256 B's status recorded. Whoever could
   * also rewrite B's manifest and status (a compromised agent of B's node) is stopped by the
   * encryption: A's archive is bound to A, and does not decrypt as B's. CRIU never runs.
   */
  @Test
  void anArchiveOfAnotherCheckpointCopiedOverThisOneIsRefused() throws Exception {
    String storage = encryptedStorage(Map.of("k1", newKey()), "k1");
    Path outA = cluster.dir().resolve("swap-a-" + cluster.namespace() + ".txt");
    Path outB = cluster.dir().resolve("swap-b-" + cluster.namespace() + ".txt");
    var a = cluster.track(Workloads.startInPidNamespace("counter", outA.toString()));
    var b = cluster.track(Workloads.startInPidNamespace("counter", outB.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(outA) >= 3 && Workloads.count(outB) >= 3);
    Checkpoint checkpointA = cluster.awaitCheckpoint(cluster.createCheckpoint("a", a.pid(), storage, null), CheckpointPhase.Completed);
    Checkpoint checkpointB = cluster.awaitCheckpoint(cluster.createCheckpoint("b", b.pid(), storage, null), CheckpointPhase.Completed);
    a.close();
    b.close();
    Manifest manifestA;
    try (ObjectStore store = cluster.openStorage(storage)) {
      manifestA = manifest(store, checkpointA);
      store.put(layout(checkpointB).archiveKey(ArchiveCodec.ZSTD), store.read(manifestA.archive.key));
    }

    Restore swapped = cluster.awaitRestore(cluster.createRestore("swapped", "b"), RestorePhase.Failed);
    assertThat(swapped.getStatus().reason).isEqualTo("ArchiveCorrupted");
    assertThat(swapped.getStatus().message).contains("recorded when it was stored");
    assertThat(swapped.getStatus().criuLogTail).as("CRIU never ran").isNull();

    // B's manifest and status rewritten to describe A's archive, as the agent of B's node could.
    byte[] forged;
    try (ObjectStore store = cluster.openStorage(storage)) {
      Manifest manifestB = manifest(store, checkpointB);
      manifestB.archive.sha256 = manifestA.archive.sha256;
      manifestB.archive.storedBytes = manifestA.archive.storedBytes;
      manifestB.archive.sizeBytes = manifestA.archive.sizeBytes;
      forged = manifestB.toJson();
      store.put(layout(checkpointB).manifestKey(), forged);
    }
    cluster.client().resources(Checkpoint.class).inNamespace(cluster.namespace()).withName("b").editStatus(c -> {
      c.getStatus().archive.sha256 = manifestA.archive.sha256;
      c.getStatus().archive.storedBytes = manifestA.archive.storedBytes;
      c.getStatus().archive.sizeBytes = manifestA.archive.sizeBytes;
      c.getStatus().archive.manifestSha256 = Sha256.hexOf(forged);
      return c;
    });
    long countOfA = Workloads.count(outA);

    Restore rebound = cluster.awaitRestore(cluster.createRestore("rebound", "b"), RestorePhase.Failed);
    assertThat(rebound.getStatus().reason).isEqualTo("ArchiveNotAuthentic");
    assertThat(rebound.getStatus().message).startsWith("archive matches the sha256 recorded when it was stored but segment 0")
        .contains("does not authenticate with key 'k1' for " + cluster.namespace() + "/" + checkpointB.getMetadata().getUid())
        .contains("belongs to another checkpoint");
    assertThat(rebound.getStatus().criuLogTail).as("CRIU never ran").isNull();
    assertThat(rebound.getStatus().restoredPid).isNull();
    assertThat(Workloads.count(outA)).as("A's process was not restored as B").isEqualTo(countOfA);
  }

  /**
   * Turning encryption on leaves the archives stored before readable; but a plain archive swapped
   * in for an encrypted one (here: another checkpoint's real images, with the manifest rewritten to
   * say "not encrypted") is refused, since the manifest is not the one the Checkpoint's status recorded.
   */
  @Test
  void archivesFromBeforeEncryptionRestoreButAPlainArchiveSwappedInIsRefused() throws Exception {
    String storage = "enc-" + UUID.randomUUID().toString().substring(0, 8);
    cluster.createS3Storage(storage, cluster.s3().endpoint(), "checkpoints");
    Path out = cluster.dir().resolve("before-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    long countBefore = Workloads.count(out);
    Checkpoint before = cluster.awaitCheckpoint(cluster.createCheckpoint("before", counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long countAfter = Workloads.count(out);
    counter.close();

    putKeySecret(storage, Map.of("k1", newKey()));
    editStorage(storage, s -> s.getSpec().encryption =
        new EncryptionSpec(new SecretReference(storage + "-keys", SECRETS_NAMESPACE), "k1"));
    Path afterOut = cluster.dir().resolve("after-" + cluster.namespace() + ".txt");
    var other = cluster.track(Workloads.startInPidNamespace("counter", afterOut.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(afterOut) >= 3);
    Checkpoint after = cluster.awaitCheckpoint(cluster.createCheckpoint("after", other.pid(), storage, null), CheckpointPhase.Completed);
    other.close();

    try (ObjectStore store = cluster.openStorage(storage)) {
      Manifest plain = manifest(store, before);
      Manifest swapped = manifest(store, after);
      assertThat(plain.archive.encryption.isEncrypted()).isFalse();
      assertThat(swapped.archive.encryption.keyId).isEqualTo("k1");
      store.put(swapped.archive.key, store.read(plain.archive.key));
      swapped.archive.encryption = Manifest.Encryption.NONE;
      swapped.archive.sha256 = plain.archive.sha256;
      swapped.archive.storedBytes = plain.archive.storedBytes;
      swapped.archive.sizeBytes = plain.archive.sizeBytes;
      store.put(layout(after).manifestKey(), swapped.toJson());
    }
    Restore refused = cluster.awaitRestore(cluster.createRestore("after", "after"), RestorePhase.Failed);
    assertThat(refused.getStatus().reason).isEqualTo("ManifestTampered");
    assertThat(refused.getStatus().message).contains("is not the one stored when the checkpoint was taken");
    assertThat(refused.getStatus().criuLogTail).isNull();
    assertThat(refused.getStatus().restoredPid).isNull();

    Restore restored = cluster.awaitRestore(cluster.createRestore("before", "before"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));
    Workloads.awaitCountingOnFrom(out, countBefore, countAfter, TIMEOUT);
  }

  @Test
  void aStorageWhoseKeySecretIsUnusableIsNotAvailableAndCheckpointsToItFail() throws Exception {
    String storage = encryptedStorage(Map.of("k1", new byte[16]), "k1");

    await().atMost(TIMEOUT).until(() -> {
      CheckpointStorage s = cluster.client().resources(CheckpointStorage.class).withName(storage).get();
      return s.getStatus() != null && "EncryptionKeyUnavailable".equals(s.getStatus().reason);
    });
    CheckpointStorage unavailable = cluster.client().resources(CheckpointStorage.class).withName(storage).get();
    assertThat(unavailable.getStatus().phase).isEqualTo("Unavailable");
    assertThat(unavailable.getStatus().message).startsWith("key 'k1' in Secret " + SECRETS_NAMESPACE + "/" + storage
        + "-keys of CheckpointStorage '" + storage + "' is 16 bytes: an AES-256 key is 32 random bytes");
    await().atMost(TIMEOUT).until(() -> cluster.client().v1().events().inNamespace("default").list().getItems().stream()
        .anyMatch(e -> storage.equals(e.getInvolvedObject().getName()) && "Warning".equals(e.getType())
            && "EncryptionKeyUnavailable".equals(e.getReason())));

    Path out = cluster.dir().resolve("badkey-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    Checkpoint failed = cluster.awaitCheckpoint(cluster.createCheckpoint("badkey", counter.pid(), storage, null), CheckpointPhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("EncryptionKeyUnavailable");
    assertThat(failed.getStatus().message).contains("is 16 bytes");
    assertThat(Workloads.isAlive(counter.pid())).isTrue();
  }

  /** An S3 storage that encrypts with the keys of Secret {@code <storage>-keys}. */
  private String encryptedStorage(Map<String, byte[]> keys, String currentKeyId) {
    String name = "enc-" + UUID.randomUUID().toString().substring(0, 8);
    putKeySecret(name, keys);
    cluster.createS3Storage(name, cluster.s3().endpoint(), "checkpoints");
    editStorage(name, s -> s.getSpec().encryption =
        new EncryptionSpec(new SecretReference(name + "-keys", SECRETS_NAMESPACE), currentKeyId));
    return name;
  }

  /** A patch, not an update: the operator may have written the storage's status since it was read. */
  private static void editStorage(String name, Consumer<CheckpointStorage> change) {
    cluster.client().resources(CheckpointStorage.class).withName(name).edit(s -> {
      change.accept(s);
      return s;
    });
  }

  private void putKeySecret(String storage, Map<String, byte[]> keys) {
    Map<String, String> data = new TreeMap<>();
    keys.forEach((id, key) -> data.put(id, Base64.getEncoder().encodeToString(key)));
    cluster.client().resource(new SecretBuilder().withNewMetadata().withName(storage + "-keys").withNamespace(SECRETS_NAMESPACE)
        .endMetadata().withData(data).build()).createOr(r -> r.update());
  }

  private Map<String, byte[]> keySecret(String storage) {
    Map<String, byte[]> keys = new TreeMap<>();
    cluster.client().secrets().inNamespace(SECRETS_NAMESPACE).withName(storage + "-keys").get().getData()
        .forEach((id, value) -> keys.put(id, Base64.getDecoder().decode(value)));
    return keys;
  }

  private static byte[] newKey() {
    byte[] key = new byte[32];
    RANDOM.nextBytes(key);
    return key;
  }

  private static ArchiveLayout layout(Checkpoint checkpoint) {
    var meta = checkpoint.getMetadata();
    return new ArchiveLayout(meta.getNamespace(), meta.getName(), meta.getUid());
  }

  private static Manifest manifest(ObjectStore store, Checkpoint checkpoint) throws Exception {
    Manifest manifest = Manifest.fromJson(store.read(layout(checkpoint).manifestKey()));
    assertThat(manifest.archive.codec).isEqualTo(ArchiveCodec.ZSTD);
    return manifest;
  }

  /** Shannon entropy of the byte values: 8 for uniformly random bytes, far less for zstd headers or tar. */
  private static double bitsPerByte(byte[] bytes) {
    long[] counts = new long[256];
    for (byte b : bytes) {
      counts[b & 0xff]++;
    }
    double bits = 0;
    for (long c : counts) {
      if (c > 0) {
        double p = (double) c / bytes.length;
        bits -= p * Math.log(p) / Math.log(2);
      }
    }
    return bits;
  }
}
