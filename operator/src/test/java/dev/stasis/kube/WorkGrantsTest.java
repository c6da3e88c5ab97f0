package dev.stasis.kube;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.SealedGrant;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ChunkKey;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a node's agent can open of what the operator grants: its own work's grant, sealed to its own
 * key, and in it only its own archives' keys. Two agents' real keys in their work folders.
 */
class WorkGrantsTest {
  static final String UID_A = "0f5e2c1a-7b1d-4c3e-9a8b-1c2d3e4f5a6b";
  static final String UID_B = "1f5e2c1a-7b1d-4c3e-9a8b-1c2d3e4f5a6b";

  @TempDir Path dir;

  @Test
  void onlyTheAgentOfTheNodeOpensTheGrantOfItsWork() throws Exception {
    NodeKey nodeA = NodeKey.inWorkDir(dir.resolve("node-a"));
    NodeKey nodeB = NodeKey.inWorkDir(dir.resolve("node-b"));
    Checkpoint work = checkpoint("sim", UID_A);
    ArchiveKey storageKey = new ArchiveKey("k1", random(32));
    WorkGrants.Grant grant = new WorkGrants.Grant("s3", new WorkGrants.Credentials("AKIA", "s3cr3t"), null, null,
        List.of(WorkGrants.grantedKey(BoundKey.of(storageKey, ArchiveIdentity.ofProcess("jobs", UID_A)))));

    SealedGrant sealed = WorkGrants.seal(grant, work, "node-a", nodeA.publicKey());

    assertThat(sealed.nodeKey).isEqualTo(nodeA.fingerprint());
    assertThat(sealed.sealed).doesNotContain("s3cr3t").doesNotContain("AKIA");
    WorkGrants.Grant opened = WorkGrants.open(sealed, nodeA, work, "node-a");
    assertThat(opened.s3()).isEqualTo(new WorkGrants.Credentials("AKIA", "s3cr3t"));
    assertThat(opened.toString()).doesNotContain("s3cr3t");
    assertThat(opened.key(ArchiveIdentity.ofProcess("jobs", UID_A)).orElseThrow().derivedBytes())
        .isEqualTo(BoundKey.of(storageKey, ArchiveIdentity.ofProcess("jobs", UID_A)).derivedBytes());

    assertThatThrownBy(() -> WorkGrants.open(sealed, nodeB, work, "node-b")).as("another node's agent")
        .isInstanceOf(WorkGrants.GrantException.class).hasMessageContaining("sealed to node key " + nodeA.fingerprint());
    SealedGrant posingAsA = new SealedGrant(nodeB.fingerprint(), sealed.sealed);
    assertThatThrownBy(() -> WorkGrants.open(posingAsA, nodeB, work, "node-a")).as("another node's agent, lying")
        .isInstanceOf(WorkGrants.GrantException.class).hasMessageContaining("does not open");
    assertThatThrownBy(() -> WorkGrants.open(sealed, nodeA, checkpoint("other", UID_B), "node-a"))
        .as("copied into another Checkpoint's status")
        .isInstanceOf(WorkGrants.GrantException.class).hasMessageContaining("does not open for Checkpoint jobs/other");
    String[] parts = sealed.sealed.split("\\.");
    byte[] ciphertext = java.util.Base64.getDecoder().decode(parts[3]);
    ciphertext[5] ^= 1;
    SealedGrant altered = new SealedGrant(sealed.nodeKey, String.join(".", parts[0], parts[1], parts[2],
        java.util.Base64.getEncoder().encodeToString(ciphertext)));
    assertThatThrownBy(() -> WorkGrants.open(altered, nodeA, work, "node-a")).as("altered")
        .isInstanceOf(WorkGrants.GrantException.class);
  }

  /** A granted key opens the archive it was derived for, not another archive of the same storage key. */
  @Test
  void aGrantedKeyIsTheKeyOfItsOwnArchiveOnly() {
    ArchiveKey storageKey = new ArchiveKey("k1", random(32));
    WorkGrants.Grant grant = new WorkGrants.Grant("s3", null, null, null,
        List.of(WorkGrants.grantedKey(BoundKey.of(storageKey, new ArchiveIdentity("jobs", UID_A, "app")))));

    assertThat(grant.key(new ArchiveIdentity("jobs", UID_A, "app"))).isPresent();
    assertThat(grant.key(new ArchiveIdentity("jobs", UID_A, "sidecar"))).isEmpty();
    assertThat(grant.key(new ArchiveIdentity("jobs", UID_A, "app")).orElseThrow().derivedBytes())
        .isNotEqualTo(BoundKey.of(storageKey, new ArchiveIdentity("jobs", UID_B, "app")).derivedBytes());
  }

  /** The chunk key sealed into a grant is its namespace's (derived from the storage key), and the only one in it. */
  @Test
  void aGrantedChunkKeyIsTheKeyOfItsNamespaceOnly() throws Exception {
    NodeKey node = NodeKey.inWorkDir(dir.resolve("node-a"));
    Checkpoint work = checkpoint("sim", UID_A);
    ArchiveKey storageKey = new ArchiveKey("k1", random(32));
    WorkGrants.Grant grant = new WorkGrants.Grant("s3", null, null, null, List.of(),
        List.of(WorkGrants.grantedChunkKey(ChunkKey.of(storageKey, "jobs"))));

    WorkGrants.Grant opened = WorkGrants.open(WorkGrants.seal(grant, work, "node-a", node.publicKey()), node, work,
        "node-a");

    assertThat(opened.chunkKey().orElseThrow().bytes()).isEqualTo(ChunkKey.of(storageKey, "jobs").bytes())
        .isNotEqualTo(ChunkKey.of(storageKey, "other").bytes());
    assertThat(opened.chunkKey("k1")).isPresent();
    assertThat(opened.chunkKey("k2")).isEmpty();
    assertThat(ChunkKey.of(new ArchiveKey("k2", random(32)), "jobs").bytes())
        .isNotEqualTo(opened.chunkKey().orElseThrow().bytes());
    assertThat(new WorkGrants.Grant("s3", null, null, null, List.of()).chunkKey()).as("a whole archive's grant").isEmpty();
  }

  @Test
  void theNodeKeyStaysAcrossRestartsAndOnlyRootReadsIt() throws Exception {
    NodeKey first = NodeKey.inWorkDir(dir);
    NodeKey again = NodeKey.inWorkDir(dir);

    assertThat(again.publicKey()).isEqualTo(first.publicKey());
    assertThat(Files.getPosixFilePermissions(dir.resolve("node-key")))
        .containsExactlyInAnyOrder(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);
  }

  private static Checkpoint checkpoint(String name, String uid) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withNamespace("jobs").withName(name).withUid(uid).build());
    return c;
  }

  private static byte[] random(int n) {
    byte[] bytes = new byte[n];
    new Random(n).nextBytes(bytes);
    return bytes;
  }
}
