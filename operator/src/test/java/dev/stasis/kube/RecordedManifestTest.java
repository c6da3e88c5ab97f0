package dev.stasis.kube;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.storage.FileSystemObjectStore;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Manifests read back from a real (filesystem) storage are trusted only as far as the Checkpoint's
 * status vouches for them: whoever can write the storage cannot change what a restore uses.
 */
class RecordedManifestTest {
  static final String UID = "0f5e2c1a-7b1d-4c3e-9a8b-1c2d3e4f5a6b";
  static final ArchiveLayout LAYOUT = new ArchiveLayout("jobs", "sim", UID);

  @TempDir Path dir;
  FileSystemObjectStore store;
  Checkpoint checkpoint;

  @BeforeEach
  void storeACheckpoint() throws Exception {
    store = new FileSystemObjectStore(dir);
    store.put(LAYOUT.archiveKey(ArchiveCodec.ZSTD), new byte[] {1, 2, 3});
    checkpoint = completed(store(manifest("ab".repeat(32), 3)));
  }

  @Test
  void theRecordedManifestIsReadWithTheArchiveAsTheStatusRecordsIt() throws Exception {
    RecordedManifest recorded = RecordedManifest.read(store, checkpoint, null);

    assertThat(recorded.manifest().source.pid).isEqualTo(4242);
    assertThat(recorded.archiveKey()).isEqualTo(LAYOUT.archiveKey(ArchiveCodec.ZSTD));
    assertThat(recorded.archive()).isEqualTo(new ArchiveSummary(10, 3, "ab".repeat(32)));
    assertThat(recorded.identity()).isEqualTo(ArchiveIdentity.ofProcess("jobs", UID));
  }

  /** Someone with write access to the bucket swaps in other images and rewrites the manifest to match. */
  @Test
  void aManifestRewrittenInTheStorageIsRefusedAsTampered() throws Exception {
    store.put(LAYOUT.archiveKey(ArchiveCodec.ZSTD), new byte[] {6, 6, 6, 6});
    Manifest forged = manifest("cd".repeat(32), 4);
    forged.paths = List.of(new Manifest.RequiredPath("/etc/shadow", Manifest.RequiredPath.FILE));
    store(forged);

    assertThatThrownBy(() -> RecordedManifest.read(store, checkpoint, null))
        .isInstanceOfSatisfying(StoredCheckpointException.class, e -> assertThat(e.reason()).isEqualTo("ManifestTampered"))
        .hasMessageContaining("is not the one stored when the checkpoint was taken")
        .hasMessageContaining("Restore another checkpoint, and check who may write to the storage");
  }

  @Test
  void aCheckpointWhoseStatusRecordsNoManifestDigestIsNotTrusted() {
    checkpoint.getStatus().archive.manifestSha256 = null;

    assertThatThrownBy(() -> RecordedManifest.read(store, checkpoint, null))
        .isInstanceOfSatisfying(StoredCheckpointException.class, e -> assertThat(e.reason()).isEqualTo("ManifestUnverified"))
        .hasMessageContaining("did not record its manifest's sha256")
        .hasMessageContaining("take a new checkpoint");
  }

  /** Even a manifest the status vouches for cannot point a reader at another object or another checkpoint's archive. */
  @Test
  void theArchiveIsWhereTheLayoutSaysAndWhatTheStatusRecorded() throws Exception {
    Manifest elsewhere = manifest("ab".repeat(32), 3);
    elsewhere.archive.key = "other/ckpt-" + UID + "/archive.tar.zst";
    checkpoint = completed(store(elsewhere));
    assertThatThrownBy(() -> RecordedManifest.read(store, checkpoint, null))
        .isInstanceOfSatisfying(StoredCheckpointException.class, e -> assertThat(e.reason()).isEqualTo("ManifestInvalid"))
        .hasMessageContaining("it names the archive other/ckpt-" + UID + "/archive.tar.zst, not " + LAYOUT.archiveKey(ArchiveCodec.ZSTD));

    Manifest otherArchive = manifest("ef".repeat(32), 3);
    Checkpoint vouched = completed(store(otherArchive));
    vouched.getStatus().archive.sha256 = "ab".repeat(32);
    assertThatThrownBy(() -> RecordedManifest.read(store, vouched, null))
        .isInstanceOfSatisfying(StoredCheckpointException.class, e -> assertThat(e.reason()).isEqualTo("ManifestInvalid"))
        .hasMessageContaining("the Checkpoint recorded 3 bytes with sha256 " + "ab".repeat(32));
  }

  @Test
  void aPodCheckpointsManifestMustBeTheContainersOwn() throws Exception {
    Manifest app = manifest("ab".repeat(32), 3);
    app.source.containerName = "app";
    app.archive.key = LAYOUT.containerArchiveKey("app", ArchiveCodec.ZSTD);
    byte[] json = app.toJson();
    store.put(LAYOUT.containerManifestKey("app"), json);
    store.put(LAYOUT.containerManifestKey("sidecar"), json); // app's manifest copied over the sidecar's
    ArchiveStatus recorded = archive(Sha256.hexOf(json), "ab".repeat(32), 3);
    checkpoint.getStatus().archive = null;
    checkpoint.getStatus().containers = List.of(container("app", recorded), container("sidecar", recorded));

    assertThat(RecordedManifest.read(store, checkpoint, "app").identity())
        .isEqualTo(new ArchiveIdentity("jobs", UID, "app"));
    assertThatThrownBy(() -> RecordedManifest.read(store, checkpoint, "sidecar"))
        .isInstanceOfSatisfying(StoredCheckpointException.class, e -> assertThat(e.reason()).isEqualTo("ManifestInvalid"))
        .hasMessageContaining("it describes container app, not sidecar");
  }

  @Test
  void aHugeObjectInPlaceOfTheManifestIsNotReadWhole() throws Exception {
    store.put(LAYOUT.manifestKey(), new byte[RecordedManifest.MAX_MANIFEST_BYTES + 4096]);

    assertThatThrownBy(() -> RecordedManifest.read(store, checkpoint, null))
        .isInstanceOfSatisfying(StoredCheckpointException.class, e -> assertThat(e.reason()).isEqualTo("ManifestTampered"))
        .hasMessageContaining("it is larger than " + RecordedManifest.MAX_MANIFEST_BYTES + " bytes");
  }

  /**
   * A deduplicated checkpoint: its chunk index is its own (where the layout says) and the one its
   * manifest recorded; finishing a checkpoint from its record checks that too.
   */
  @Test
  void aDeduplicatedCheckpointsChunkIndexIsItsOwnAndTheOneItsManifestRecorded() throws Exception {
    byte[] index = {'S', 'T', 'S', 'I', 1, 0, 0, 0, 0, 0};
    store.put(LAYOUT.chunkIndexKey(), index);
    Manifest chunked = manifest("ab".repeat(32), 3);
    chunked.chunked(chunks(LAYOUT.chunkIndexKey(), index));
    checkpoint = completed(store(chunked));

    assertThat(RecordedManifest.read(store, checkpoint, null).chunkIndex(store)).isEqualTo(index);
    assertThat(RecordedArchive.mismatch(store, checkpoint)).isEmpty();

    byte[] altered = index.clone();
    altered[9] = 1;
    store.put(LAYOUT.chunkIndexKey(), altered);
    assertThatThrownBy(() -> RecordedManifest.read(store, checkpoint, null).chunkIndex(store))
        .isInstanceOf(ArchiveIntegrityException.class).hasMessageContaining("is not the one stored with the checkpoint");
    assertThat(RecordedArchive.mismatch(store, checkpoint)).hasValueSatisfying(m -> assertThat(m)
        .contains("the chunk index").contains("is not the one stored"));
    store.deleteAll(LAYOUT.chunkIndexKey());
    assertThat(RecordedArchive.mismatch(store, checkpoint)).hasValueSatisfying(m -> assertThat(m).endsWith("is missing"));

    Manifest elsewhere = manifest("ab".repeat(32), 3);
    elsewhere.chunked(chunks("jobs/other-" + UID + "/chunks.idx", index));
    Checkpoint pointingElsewhere = completed(store(elsewhere));
    assertThatThrownBy(() -> RecordedManifest.read(store, pointingElsewhere, null))
        .isInstanceOfSatisfying(StoredCheckpointException.class, e -> assertThat(e.reason()).isEqualTo("ManifestInvalid"))
        .hasMessageContaining("it names the chunk index jobs/other-" + UID + "/chunks.idx, not " + LAYOUT.chunkIndexKey());
  }

  private static Manifest.Chunks chunks(String indexKey, byte[] index) {
    Manifest.Chunks chunks = new Manifest.Chunks();
    chunks.indexKey = indexKey;
    chunks.indexSha256 = Sha256.hexOf(index);
    chunks.indexBytes = (long) index.length;
    chunks.codec = ArchiveCodec.ZSTD;
    chunks.encryption = "none";
    chunks.keyId = "chunks-1";
    chunks.imagesBytes = 0L;
    return chunks;
  }

  @Test
  void aMissingManifestSaysSo() throws Exception {
    store.deleteAll(LAYOUT.manifestKey());

    assertThatThrownBy(() -> RecordedManifest.read(store, checkpoint, null))
        .isInstanceOfSatisfying(StoredCheckpointException.class, e -> assertThat(e.reason()).isEqualTo("ManifestMissing"));
  }

  /** Stores the manifest; returns the sha256 of its bytes. */
  private String store(Manifest manifest) throws Exception {
    byte[] json = manifest.toJson();
    store.put(LAYOUT.manifestKey(), json);
    return Sha256.hexOf(json);
  }

  private Checkpoint completed(String manifestSha256) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withNamespace("jobs").withName("sim").withUid(UID).build());
    c.setStatus(new CheckpointStatus());
    c.getStatus().archive = archive(manifestSha256, "ab".repeat(32), 3);
    return c;
  }

  private static ArchiveStatus archive(String manifestSha256, String sha256, long storedBytes) {
    ArchiveStatus archive = new ArchiveStatus();
    archive.sha256 = sha256;
    archive.storedBytes = storedBytes;
    archive.sizeBytes = 10L;
    archive.manifestSha256 = manifestSha256;
    return archive;
  }

  private static ContainerCheckpointStatus container(String name, ArchiveStatus archive) {
    ContainerCheckpointStatus c = new ContainerCheckpointStatus(name, "cri-o://" + name);
    c.archive = archive;
    return c;
  }

  private static Manifest manifest(String sha256, long storedBytes) {
    Manifest m = new Manifest();
    m.source = new Manifest.Source();
    m.source.namespace = "jobs";
    m.source.checkpointName = "sim";
    m.source.checkpointUid = UID;
    m.source.node = "node-a";
    m.source.pid = 4242;
    m.nodeProfile = Map.of("arch", "amd64");
    m.archive = new Manifest.Archive();
    m.archive.key = LAYOUT.archiveKey(ArchiveCodec.ZSTD);
    m.archive.codec = ArchiveCodec.ZSTD;
    m.archive.sha256 = sha256;
    m.archive.storedBytes = storedBytes;
    m.archive.sizeBytes = 10L;
    return m;
  }
}
