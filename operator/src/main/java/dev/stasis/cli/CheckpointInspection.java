package dev.stasis.cli;

import dev.stasis.agent.restore.ChunkedImagesDownload;
import dev.stasis.agent.restore.RebuiltKubeletArchive;
import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.RestorePlacement;
import dev.stasis.archive.ArchiveAuthenticationException;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveReader;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.ContainerDump;
import dev.stasis.archive.Manifest;
import dev.stasis.criu.DumpContents;
import dev.stasis.kube.ChunkSecrets;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.StoredCheckpointException;
import dev.stasis.operator.placement.CheckpointNeeds;
import dev.stasis.operator.placement.NodeMatcher;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import org.apache.commons.io.file.PathUtils;

/**
 * Reads a stored checkpoint the way a restore does, trusting nothing read back: the Checkpoint
 * from the API server, its manifest from storage checked against the sha256 its status recorded
 * ({@link RecordedManifest}), its archive unpacked into a private folder and checked against the
 * recorded sha256 and size ({@link ArchiveReader}), decrypted with the storage's key from the
 * Secret the operator reads it from. Then CRIU's images are read ({@link DumpContents}), the
 * folder is deleted, and each node's profile is matched as placement would.
 */
final class CheckpointInspection {
  private final KubernetesClient client;
  private final Path workDir;
  private final ChunkSecrets chunkSecrets;

  /** @param workDir where archives are unpacked for the time it takes to read them */
  CheckpointInspection(KubernetesClient client, Path workDir, ChunkSecrets chunkSecrets) {
    this.client = client;
    this.workDir = workDir;
    this.chunkSecrets = chunkSecrets;
  }

  /** A checkpoint that cannot be inspected, and what to do about it. */
  static final class Refused extends Exception {
    Refused(String message) {
      super(message);
    }
  }

  /** @param container only this container of a pod checkpoint; null: all of them */
  CheckpointReport inspect(String namespace, String name, String container) throws Refused, IOException {
    Checkpoint checkpoint = get(() -> client.resources(Checkpoint.class).inNamespace(namespace).withName(name).get(),
        "the Checkpoint");
    if (checkpoint == null) {
      throw new Refused("there is no Checkpoint '" + name + "' in namespace " + namespace);
    }
    var status = checkpoint.getStatus();
    if (status == null || status.phase != CheckpointPhase.Completed) {
      throw new Refused("Checkpoint " + namespace + "/" + name + " is " + (status == null || status.phase == null
          ? "not started" : status.phase) + ": only a Completed checkpoint has a stored archive to inspect"
          + (status != null && status.message != null ? " (" + status.message + ")" : ""));
    }
    StorageBinding storages = new StorageBinding(client);
    CheckpointStorage storage = get(() -> storages.find(status.storage), "CheckpointStorage '" + status.storage + "'");
    if (storage == null) {
      throw new Refused("CheckpointStorage '" + status.storage + "', where the checkpoint is stored, does not exist");
    }
    List<String> containers = containers(checkpoint, container);
    List<CheckpointReport.Archive> archives = new ArrayList<>();
    Manifest first = null;
    try (ObjectStore store = open(storages, storage)) {
      for (String c : containers) {
        RecordedManifest recorded = manifest(store, checkpoint, c);
        first = first == null ? recorded.manifest() : first;
        ArchiveStatus archiveStatus = RecordedManifest.recordedArchive(checkpoint, c);
        archives.add(archive(store, storages, storage, recorded, archiveStatus.newBytes));
      }
    }
    var criu = first.criu == null ? null : new CheckpointReport.Criu(first.criu.version, first.criu.options);
    return new CheckpointReport(namespace, name, checkpoint.getMetadata().getUid(), status.phase.name(), status.target,
        status.node, status.storage, status.stats, criu, first.nodeProfile, archives, verdicts(first));
  }

  /** null stands for the process archive of a process checkpoint. */
  private static List<String> containers(Checkpoint checkpoint, String container) throws Refused {
    List<ContainerCheckpointStatus> recorded = checkpoint.getStatus().containers;
    if (recorded == null || recorded.isEmpty()) {
      if (container != null) {
        throw new Refused("Checkpoint " + checkpoint.getMetadata().getName() + " is of a process, not of a pod:"
            + " it has no container " + container);
      }
      List<String> process = new ArrayList<>();
      process.add(null);
      return process;
    }
    List<String> names = recorded.stream().map(c -> c.name).toList();
    if (container != null && !names.contains(container)) {
      throw new Refused("Checkpoint " + checkpoint.getMetadata().getName() + " has no container " + container
          + "; it has " + String.join(", ", names));
    }
    return container != null ? List.of(container) : names;
  }

  private RecordedManifest manifest(ObjectStore store, Checkpoint checkpoint, String container) throws Refused {
    try {
      return RecordedManifest.read(store, checkpoint, container);
    } catch (StoredCheckpointException e) {
      throw new Refused(e.reason() + ": " + e.getMessage());
    }
  }

  /** @param newBytes what the checkpoint added to storage, as its status recorded it (null from older agents) */
  private CheckpointReport.Archive archive(ObjectStore store, StorageBinding storages, CheckpointStorage storage,
      RecordedManifest recorded, Long newBytes) throws Refused, IOException {
    Manifest.Archive stored = recorded.manifest().archive;
    BoundKey key = decryptionKey(storages, storage, recorded);
    requireRoomFor(recorded.archive().sizeBytes());
    Files.createDirectories(workDir);
    Path unpacked = Files.createTempDirectory(workDir, "inspect-");
    try {
      CheckpointReport.Deduplicated deduplicated;
      if (recorded.manifest().isChunked() && !recorded.identity().container().isEmpty()) {
        deduplicated = rebuiltKubeletArchive(store, storages, storage, recorded, key, unpacked, newBytes);
      } else {
        try (InputStream in = store.open(recorded.archiveKey())) {
          new ArchiveReader().extract(in, unpacked, stored.codec, recorded.archive(), key);
        } catch (ArchiveAuthenticationException e) {
          throw new Refused("ArchiveNotAuthentic: " + e.getMessage());
        } catch (ArchiveIntegrityException e) {
          throw new Refused("ArchiveCorrupted: " + e.getMessage());
        }
        deduplicated = recorded.manifest().isChunked()
            ? chunkedImages(store, storages, storage, recorded, unpacked, newBytes) : null;
      }
      ContainerDump container = recorded.identity().container().isEmpty() ? null : ContainerDump.read(unpacked);
      DumpContents dump = DumpContents.read(container == null ? unpacked : unpacked.resolve(ContainerDump.IMAGES_FOLDER));
      String containerName = recorded.identity().container().isEmpty() ? null : recorded.identity().container();
      return new CheckpointReport.Archive(containerName, store.uri(recorded.archiveKey()), recorded.archive().storedBytes(),
          recorded.archive().sizeBytes(), recorded.archive().sha256(), stored.codec.name().toLowerCase(Locale.ROOT),
          stored.encryption.isEncrypted() ? stored.encryption.keyId : null, deduplicated, container, dump,
          requiredFiles(recorded.manifest()));
    } finally {
      PathUtils.deleteDirectory(unpacked);
    }
  }

  /** The memory images of a deduplicated checkpoint, put together from their chunks and verified as a restore does. */
  private CheckpointReport.Deduplicated chunkedImages(ObjectStore store, StorageBinding storages,
      CheckpointStorage storage, RecordedManifest recorded, Path unpacked, Long newBytes) throws Refused, IOException {
    ChunkKey chunkKey = chunkKey(storages, storage, recorded);
    return deduplicated(recorded, newBytes, readingChunks(
        () -> new ChunkedImagesDownload(store, recorded, chunkKey).writeInto(unpacked, bytes -> {})));
  }

  /**
   * A deduplicated pod checkpoint's container: its kubelet archive put together and verified as a
   * restore does ({@link RebuiltKubeletArchive}) into a file next to {@code unpacked}, then unpacked
   * there as the tar it is.
   */
  private CheckpointReport.Deduplicated rebuiltKubeletArchive(ObjectStore store, StorageBinding storages,
      CheckpointStorage storage, RecordedManifest recorded, BoundKey key, Path unpacked, Long newBytes)
      throws Refused, IOException {
    ChunkKey chunkKey = chunkKey(storages, storage, recorded);
    Path tar = Files.createTempFile(workDir, "inspect-", ".tar");
    try {
      return deduplicated(recorded, newBytes, readingChunks(() -> {
        RebuiltKubeletArchive.Rebuilt rebuilt = RebuiltKubeletArchive.write(store, recorded, key, chunkKey, tar,
            bytes -> {});
        try (InputStream in = Files.newInputStream(tar)) {
          // Checked as it was put together: unpacked as a plain tar of that length and sha256.
          new ArchiveReader().extract(in, unpacked, ArchiveCodec.NONE,
              new ArchiveSummary(rebuilt.tarBytes(), rebuilt.tarBytes(), recorded.manifest().archive.tarSha256), null);
        }
        return rebuilt.written();
      }));
    } finally {
      Files.deleteIfExists(tar);
    }
  }

  private ChunkKey chunkKey(StorageBinding storages, CheckpointStorage storage, RecordedManifest recorded)
      throws Refused {
    return ChunkKey.of(chunkKeySource(storages, storage, recorded.manifest().chunks), recorded.identity().namespace());
  }

  private static CheckpointReport.Deduplicated deduplicated(RecordedManifest recorded, Long newBytes,
      ChunkedImagesDownload.Written written) {
    Manifest.Chunks chunks = recorded.manifest().chunks;
    return new CheckpointReport.Deduplicated(chunks.imagesBytes, written.chunks(), written.distinctChunks(),
        written.distinctStoredBytes(), newBytes, chunks.encryption, chunks.keyId);
  }

  /** Reading a deduplicated checkpoint's chunks. */
  private interface ChunkRead {
    ChunkedImagesDownload.Written run() throws IOException, InterruptedException;
  }

  /** What {@code read} read; what made it fail as the reason a restore would give. */
  private static ChunkedImagesDownload.Written readingChunks(ChunkRead read) throws Refused, IOException {
    try {
      return read.run();
    } catch (ArchiveAuthenticationException e) {
      throw new Refused("ArchiveNotAuthentic: " + e.getMessage());
    } catch (ArchiveIntegrityException e) {
      throw new Refused("ArchiveCorrupted: " + e.getMessage());
    } catch (ChunkedImagesDownload.ChunkMissingException e) {
      throw new Refused("ArchiveMissing: " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new Refused("interrupted while reading the chunks");
    }
  }

  /** The storage key a deduplicated checkpoint's chunk key derives from: the encryption key it names, or the chunk secret. */
  private ArchiveKey chunkKeySource(StorageBinding storages, CheckpointStorage storage, Manifest.Chunks chunks)
      throws Refused {
    if (!Manifest.Encryption.NONE.algorithm.equals(chunks.encryption)) {
      return storageKey(storages, storage, chunks.keyId, "the chunks are encrypted");
    }
    try {
      return chunkSecrets.find(storage, chunks.keyId).orElseThrow(() -> new Refused("the chunks are named with chunk"
          + " secret '" + chunks.keyId + "', which Secret " + chunkSecrets.location(storage) + " does not hold (is"
          + " the operator in another namespace? --operator-namespace)"));
    } catch (StorageUnavailableException e) {
      throw new Refused("the chunks are named with the storage's chunk secret, and " + e.getMessage()
          + forbiddenHint(e));
    }
  }

  private static List<CheckpointReport.RequiredFile> requiredFiles(Manifest manifest) {
    return manifest.paths == null ? List.of() : manifest.paths.stream().map(CheckpointReport.RequiredFile::of).toList();
  }

  /**
   * The key the manifest says the archive is encrypted with, from the storage's Secret, as the
   * operator reads it (it grants agents the same key bound to the archive); null when not encrypted.
   */
  private BoundKey decryptionKey(StorageBinding storages, CheckpointStorage storage, RecordedManifest recorded)
      throws Refused {
    Manifest.Encryption encryption = recorded.manifest().archive.encryption;
    if (!encryption.isEncrypted()) {
      return null;
    }
    return BoundKey.of(storageKey(storages, storage, encryption.keyId, "the archive is encrypted"),
        recorded.identity());
  }

  /** Key {@code keyId} of the storage's encryption Secret, as the operator reads it. */
  private static ArchiveKey storageKey(StorageBinding storages, CheckpointStorage storage, String keyId, String what)
      throws Refused {
    String refusal = what + " with key '" + keyId + "' of CheckpointStorage '" + storage.getMetadata().getName() + "'";
    try {
      return storages.archiveKeys(storage)
          .orElseThrow(() -> new Refused(refusal + ", which no longer names an encryption key Secret"))
          .find(keyId)
          .orElseThrow(() -> new Refused(refusal + ", which its Secret no longer holds: nothing can decrypt it"));
    } catch (StorageUnavailableException e) {
      throw new Refused(refusal + ", and " + e.getMessage() + forbiddenHint(e));
    }
  }

  private static ObjectStore open(StorageBinding storages, CheckpointStorage storage) throws Refused {
    try {
      return storages.open(storage);
    } catch (StorageUnavailableException e) {
      throw new Refused("cannot open CheckpointStorage '" + storage.getMetadata().getName() + "': " + e.getMessage()
          + forbiddenHint(e));
    }
  }

  /** When the API server said no: who may read what the operator reads. */
  private static String forbiddenHint(Exception e) {
    return e.getCause() instanceof KubernetesClientException k && k.getCode() == 403
        ? ". stasis inspect reads the storage's credentials and keys as the operator does: it needs get on that"
            + " Secret (ask a cluster admin, or run it as the operator's ServiceAccount)"
        : "";
  }

  private List<CheckpointReport.NodeVerdict> verdicts(Manifest manifest) throws Refused {
    CheckpointNeeds needs = CheckpointNeeds.of(manifest);
    List<NodeProfile> profiles = get(() -> client.resources(NodeProfile.class).list().getItems(), "the NodeProfiles");
    return profiles.stream().sorted(Comparator.comparing(p -> p.getMetadata().getName())).map(p -> {
      List<String> reasons = NodeMatcher.incompatibilities(needs, new RestorePlacement(), p);
      return new CheckpointReport.NodeVerdict(p.getMetadata().getName(), reasons.isEmpty(), reasons);
    }).toList();
  }

  /** Unpacking takes what the archive held before compression. */
  private void requireRoomFor(long sizeBytes) throws Refused, IOException {
    Path existing = workDir.toAbsolutePath();
    while (!Files.exists(existing)) {
      existing = existing.getParent();
    }
    long free = Files.getFileStore(existing).getUsableSpace();
    if (free < sizeBytes) {
      throw new Refused("the archive unpacks to " + CheckpointReport.bytes(sizeBytes) + ", and " + workDir + " has "
          + CheckpointReport.bytes(free) + " free: give --work-dir a folder with room");
    }
  }

  private interface ApiCall<T> {
    T call();
  }

  private static <T> T get(ApiCall<T> call, String what) throws Refused {
    try {
      return call.call();
    } catch (KubernetesClientException e) {
      throw new Refused("cannot read " + what + " from the API server: " + (e.getStatus() != null
          && e.getStatus().getMessage() != null ? e.getStatus().getMessage() : e.getMessage()));
    }
  }
}
