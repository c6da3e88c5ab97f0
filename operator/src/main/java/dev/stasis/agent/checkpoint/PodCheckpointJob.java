package dev.stasis.agent.checkpoint;

import dev.stasis.agent.WorkFailure;
import dev.stasis.agent.profile.NodeFingerprint;
import dev.stasis.agent.work.NodeJob;
import dev.stasis.agent.work.NodeWork;
import dev.stasis.agent.work.WorkProgress;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointStats;
import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.ContainerCheckpointStatus;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.ProgressStatus;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ArchiveWriter;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.RuntimeArchive;
import dev.stasis.archive.Sha256;
import dev.stasis.archive.dedup.TarSkeleton;
import dev.stasis.kube.StoredPackIndexes;
import dev.stasis.kube.PodTargets;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.WorkGrants;
import dev.stasis.kubelet.KubeletClient;
import dev.stasis.kubelet.KubeletException;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.ObjectUpload;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.Pod;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Takes the pod checkpoints the operator assigned to this node, one container after the other:
 * the kubelet's checkpoint API has the runtime write an archive into the kubelet's checkpoint
 * folder; the agent streams that archive byte for byte (compressed as the storage says) into
 * storage, writes the container's manifest last, and deletes the kubelet's copy, which holds the
 * container's memory. A checkpoint that fails leaves nothing stored.
 */
final class PodCheckpointJob extends NodeJob<Checkpoint> {
  private static final Logger log = LoggerFactory.getLogger(PodCheckpointJob.class);
  private static final ObjectMapper JSON = new ObjectMapper();
  /** The kubelet and the agent read the node's clock in whole seconds; a margin for the rounding. */
  private static final Duration KUBELET_CLOCK_SLACK = Duration.ofSeconds(5);

  PodCheckpointJob(NodeWork work) {
    super(work);
  }

  @Override
  public void take(Checkpoint checkpoint) {
    String podName = checkpoint.getSpec().target.pod.name;
    var running = work.checkpoints.start(checkpoint, config.nodeName(), "checkpointing pod " + podName
        + " through the kubelet", s -> {});
    if (running.isEmpty()) {
      return;
    }
    checkpoint = running.get();
    long started = System.nanoTime();
    try {
      events.normal(checkpoint, "Started", "checkpointing pod " + podName + " through the kubelet of node "
          + config.nodeName());
      PodTargets.ResolvedPod pod = podOnThisNode(checkpoint);
      CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
      var notAllowed = StorageBinding.refusal(storage, checkpoint.getMetadata().getNamespace());
      if (notAllowed.isPresent()) {
        throw new WorkFailure("StorageNotAllowed", notAllowed.get());
      }
      KubeletClient kubelet = kubelet();
      WorkGrants.Grant grant = storages.grant(checkpoint);
      try (ObjectStore store = storages.open(storage, grant)) {
        List<ContainerCheckpointStatus> stored = new ArrayList<>();
        try (WorkProgress progress = work.progress(checkpoint, work.checkpoints)) {
          for (ContainerCheckpointStatus container : pod.containers()) {
            BoundKey encryptWith = storages.encryptionKey(storage, grant, new ArchiveIdentity(
                checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getUid(), container.name)).orElse(null);
            stored.add(checkpointContainer(checkpoint, pod, container, kubelet, store, StorageBinding.codec(storage),
                encryptWith, grant.chunkKey().orElse(null), progress));
          }
        } catch (WorkFailure failure) {
          deleteStored(store, RecordedManifest.layout(checkpoint), failure);
          throw failure;
        }
        complete(checkpoint, store, stored, started);
      }
    } catch (WorkFailure failure) {
      fail(checkpoint, failure);
    } catch (RuntimeException e) {
      log.error("pod checkpoint {} failed unexpectedly", checkpoint.getMetadata().getName(), e);
      fail(checkpoint, new WorkFailure("AgentError", "the agent failed unexpectedly: " + e));
    }
  }

  /** The operator checked the pod when it assigned the work; it may have changed since. */
  private PodTargets.ResolvedPod podOnThisNode(Checkpoint checkpoint) throws WorkFailure {
    PodTargets.ResolvedPod pod;
    try {
      pod = PodTargets.resolve(client, checkpoint.getMetadata().getNamespace(), checkpoint.getSpec().target.pod);
    } catch (PodTargets.Unusable e) {
      throw new WorkFailure(e.reason(), e.getMessage());
    }
    if (!config.nodeName().equals(pod.node())) {
      throw new WorkFailure("PodMoved", "pod '" + pod.pod().getMetadata().getName() + "' now runs on node "
          + pod.node() + ", not on " + config.nodeName() + ": create a new Checkpoint");
    }
    return pod;
  }

  private KubeletClient kubelet() throws WorkFailure {
    try {
      return config.kubelet().client();
    } catch (KubeletException e) {
      throw new WorkFailure(e.reason(), e.getMessage());
    }
  }

  private ContainerCheckpointStatus checkpointContainer(Checkpoint checkpoint, PodTargets.ResolvedPod pod,
      ContainerCheckpointStatus container, KubeletClient kubelet, ObjectStore store, ArchiveCodec codec,
      BoundKey encryptWith, ChunkKey chunkKey, WorkProgress progress) throws WorkFailure {
    var meta = checkpoint.getMetadata();
    progress.step(ProgressStatus.DUMPING, 0); // how big the runtime's archive will be is known once it is written
    String reported;
    try {
      reported = kubelet.checkpoint(meta.getNamespace(), pod.pod().getMetadata().getName(), container.name,
          Duration.ofSeconds(checkpoint.getSpec().optionsOrDefaults().timeoutSecondsOrDefault()));
    } catch (KubeletException e) {
      throw new WorkFailure(e.reason(), e.getMessage());
    }
    Path archive = kubeletArchive(reported);
    try {
      CommittedManifest manifest = chunkKey == null
          ? store(checkpoint, pod, container, archive, store, codec, encryptWith, progress)
          : storeDeduplicated(checkpoint, pod, container, archive, store, codec, encryptWith, chunkKey, progress);
      ContainerCheckpointStatus done = new ContainerCheckpointStatus(container.name, container.containerID);
      done.archive = manifest.archiveStatus(store);
      return done;
    } finally {
      deleteKubeletCopy(archive);
    }
  }

  /** Where the kubelet's archive is for this agent: the same file name in its view of the checkpoint folder. */
  private Path kubeletArchive(String reported) throws WorkFailure {
    Path name = Path.of(reported).getFileName();
    Path archive = name == null ? null : config.kubelet().checkpointDir().resolve(name.toString());
    if (archive == null || !Files.isRegularFile(archive)) {
      throw new WorkFailure("KubeletArchiveMissing", "the kubelet wrote the checkpoint archive " + reported
          + " but the agent does not find it in " + config.kubelet().checkpointDir()
          + ": mount the kubelet's checkpoint folder into the agent (hostPath) and point --kubelet-checkpoint-dir at it");
    }
    return archive;
  }

  private CommittedManifest store(Checkpoint checkpoint, PodTargets.ResolvedPod pod,
      ContainerCheckpointStatus container, Path archive, ObjectStore store, ArchiveCodec codec, BoundKey encryptWith,
      WorkProgress progress) throws WorkFailure {
    ArchiveLayout layout = RecordedManifest.layout(checkpoint);
    String archiveKey = layout.containerArchiveKey(container.name, codec);
    try {
      RuntimeArchive written = describe(archive);
      ArchiveWriter.StoredTar stored;
      progress.step(ProgressStatus.UPLOADING, progress.bytesDone() + Files.size(archive));
      try (ObjectUpload upload = store.upload(archiveKey);
          InputStream tar = progress.counting(Files.newInputStream(archive))) {
        stored = new ArchiveWriter().writeTar(tar, upload.stream(), codec, encryptWith);
        upload.commit();
      }
      Manifest manifest = manifest(checkpoint, pod, container, archive, written, archiveKey, codec, stored);
      if (encryptWith != null) {
        manifest.archive.encryption = Manifest.Encryption.with(encryptWith, stored.compressedSha256(),
            stored.compressedBytes());
      }
      return CommittedManifest.put(store, layout.containerManifestKey(container.name), manifest);
    } catch (IOException e) {
      throw new WorkFailure("StorageFailed", "storing the archive of container " + container.name + " in "
          + store.uri(archiveKey) + " failed: " + e.getMessage() + "; nothing was kept");
    }
  }

  /**
   * Deduplicated (docs/dedup.md, "Pod checkpoints"): the archive's pages images go into the
   * namespace's chunks, the rest of it into the archive object as a tar skeleton; the manifest
   * records the whole tar's sha256, which the restore checks the tar it puts together against.
   */
  private CommittedManifest storeDeduplicated(Checkpoint checkpoint, PodTargets.ResolvedPod pod,
      ContainerCheckpointStatus container, Path archive, ObjectStore store, ArchiveCodec codec, BoundKey encryptWith,
      ChunkKey chunkKey, WorkProgress progress) throws WorkFailure {
    ArchiveLayout layout = RecordedManifest.layout(checkpoint);
    String archiveKey = layout.containerArchiveKey(container.name, codec);
    try (FileChannel tar = FileChannel.open(archive)) {
      RuntimeArchive written = describe(archive);
      long tarBytes = tar.size();
      progress.step(ProgressStatus.UPLOADING, progress.bytesDone() + tarBytes);
      long before = progress.bytesDone();
      String tarSha256 = Sha256.hexOf(TarSkeleton.range(tar, 0, tarBytes));
      KubeletArchiveImages.Found images = KubeletArchiveImages.in(archive, tar);
      ChunkedImagesUpload chunked = new ChunkedImagesUpload(store, layout, layout.containerChunkIndexKey(container.name),
          chunkKey, encryptWith != null, codec);
      chunked.listStored();
      ChunkedImagesUpload.Stored chunks = chunked.store(images.toCut(), cut -> progress.done(before + cut));
      ArchiveWriter.StoredTar stored;
      try (ObjectUpload upload = store.upload(archiveKey);
          InputStream skeleton = progress.counting(TarSkeleton.split(tar, tarBytes, images.holes()))) {
        stored = new ArchiveWriter().writeTar(skeleton, upload.stream(), codec, encryptWith);
        upload.commit();
      }
      Manifest manifest = manifest(checkpoint, pod, container, archive, written, archiveKey, codec, stored);
      manifest.archive.tarSha256 = tarSha256;
      manifest.chunked(chunks.chunks());
      if (encryptWith != null) {
        manifest.archive.encryption = Manifest.Encryption.with(encryptWith);
      }
      for (StoredPackIndexes.Untrusted index : chunks.untrustedPackIndexes()) {
        events.warning(checkpoint, "PackIndexUntrusted", "the pack index " + index.uri() + " was not used: "
            + index.reason() + "; the chunks it lists were stored again, and the storage's collector removes that pack"
            + " when no checkpoint refers to it");
      }
      log.info("pod checkpoint {}/{} container {}: {} of {} chunks were new ({} bytes uploaded) of {} bytes of pages"
          + " images in a {} byte archive", checkpoint.getMetadata().getNamespace(), checkpoint.getMetadata().getName(),
          container.name, chunks.uploadedChunks(), chunks.distinctChunks(), chunks.newBytes(),
          chunks.chunks().imagesBytes, tarBytes);
      return CommittedManifest.put(store, layout.containerManifestKey(container.name), manifest,
          stored.summary().storedBytes() + chunks.newBytes());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new WorkFailure("StorageFailed", "storing the chunks of container " + container.name
          + " was interrupted; nothing was kept");
    } catch (IOException e) {
      throw new WorkFailure("StorageFailed", "storing the archive of container " + container.name + " in "
          + store.uri(archiveKey) + " deduplicated failed: " + e.getMessage() + "; nothing was kept");
    }
  }

  private static Manifest.Owner controller(Pod pod) {
    return pod.getMetadata().getOwnerReferences() == null ? null : pod.getMetadata().getOwnerReferences().stream()
        .filter(o -> Boolean.TRUE.equals(o.getController())).findFirst().map(o -> {
          Manifest.Owner owner = new Manifest.Owner();
          owner.apiVersion = o.getApiVersion();
          owner.kind = o.getKind();
          owner.name = o.getName();
          owner.uid = o.getUid();
          return owner;
        }).orElse(null);
  }

  /** What the runtime's archive says about itself; nothing, when it cannot be read as a tar (it is stored as it is). */
  private static RuntimeArchive describe(Path archive) {
    try {
      return RuntimeArchive.read(archive);
    } catch (IOException e) {
      log.warn("cannot read the metadata of the kubelet's archive {}: {}", archive, e.getMessage());
      return new RuntimeArchive(null, null, null, null, null);
    }
  }

  private Manifest manifest(Checkpoint checkpoint, PodTargets.ResolvedPod pod, ContainerCheckpointStatus container,
      Path archive, RuntimeArchive written, String archiveKey, ArchiveCodec codec, ArchiveWriter.StoredTar stored) {
    Pod p = pod.pod();
    NodeProfileSpec profile = NodeFingerprint.profile(client, config.nodeName());
    Manifest m = CheckpointManifest.of(checkpoint, config.nodeName(), profile, archiveKey, codec, stored.summary());
    m.archive.tarSha256 = stored.tarSha256();
    m.source.podName = p.getMetadata().getName();
    m.source.containerName = container.name;
    m.source.containerId = container.containerID;
    m.source.containerImage = p.getSpec().getContainers().stream().filter(c -> c.getName().equals(container.name))
        .map(Container::getImage).findFirst().orElse(null);
    m.source.podLabels = p.getMetadata().getLabels();
    m.source.podController = controller(p);
    m.source.podAnnotations = p.getMetadata().getAnnotations();
    @SuppressWarnings("unchecked")
    Map<String, Object> podSpec = JSON.convertValue(p.getSpec(), Map.class);
    m.source.podSpec = podSpec;
    m.source.kubeletArchive = archive.getFileName().toString();
    m.source.rootfsImageRef = written.rootfsImageRef();
    m.source.rootfsImageName = written.rootfsImageName();
    if (profile != null && profile.criu != null && profile.criu.version != null && !profile.criu.version.isBlank()) {
      m.criu = new Manifest.Criu(); // the runtime ran the node's CRIU with options of its own
      m.criu.version = profile.criu.version;
    }
    m.runtime = new Manifest.Runtime();
    m.runtime.name = profile == null || profile.runtime == null ? null : profile.runtime.name;
    m.runtime.version = profile == null || profile.runtime == null ? null : profile.runtime.version;
    m.runtime.ociRuntime = written.ociRuntime();
    m.runtime.criuVersion = written.criuVersion();
    return m;
  }

  private static void deleteStored(ObjectStore store, ArchiveLayout layout, WorkFailure failure) {
    try {
      store.deleteAll(layout.prefix());
    } catch (IOException e) {
      failure.addSuppressed(e);
      log.warn("could not delete the partial pod checkpoint {}: {}", store.uri(layout.prefix()), e.getMessage());
    }
  }

  /** The archive holds every memory page of the container: it must not outlive its upload on the node. */
  private static void deleteKubeletCopy(Path archive) {
    try {
      Files.deleteIfExists(archive);
    } catch (IOException e) {
      log.warn("could not delete the kubelet's checkpoint archive {}: {}", archive, e.getMessage());
    }
  }

  private void complete(Checkpoint checkpoint, ObjectStore store, List<ContainerCheckpointStatus> stored, long started) {
    CheckpointStats stats = new CheckpointStats();
    stats.totalTimeMillis = Duration.ofNanos(System.nanoTime() - started).toMillis();
    long bytes = stored.stream().mapToLong(c -> c.archive.storedBytes).sum();
    String message = "stored " + stored.size() + " container archive" + (stored.size() == 1 ? "" : "s") + " ("
        + bytes + " bytes) at " + store.uri(RecordedManifest.layout(checkpoint).prefix());
    work.checkpoints.completePod(checkpoint, stored, stats, message);
  }

  /** A transient failure with attempts left goes back to Pending for another attempt; any other fails it. */
  private void fail(Checkpoint checkpoint, WorkFailure cause) {
    int backoffLimit = checkpoint.getSpec().backoffLimitOrDefault();
    if (work.retryLater(work.checkpoints, checkpoint, cause, backoffLimit)) {
      return;
    }
    WorkFailure failure = cause.afterAttempts(checkpoint.getStatus().attempts(), backoffLimit);
    log.warn("pod checkpoint {}/{} failed: {} {}", checkpoint.getMetadata().getNamespace(),
        checkpoint.getMetadata().getName(), failure.reason(), failure.getMessage());
    work.checkpoints.fail(checkpoint, failure.reason(), failure.getMessage(), null);
  }

  /**
   * A pod checkpoint left Running by an agent that died: what it stored and the kubelet archives
   * it had not deleted yet are removed, and that attempt failed (tried again if spec.backoffLimit allows).
   */
  @Override
  public Optional<Duration> resolveAbandoned(Checkpoint checkpoint) {
    WorkFailure failure = new WorkFailure("AgentRestarted", "the agent on node " + config.nodeName()
        + " restarted while this checkpoint ran");
    deleteLeftoverKubeletArchives(checkpoint);
    work.discardStored(checkpoint);
    fail(checkpoint, failure);
    return Optional.empty();
  }

  /**
   * The kubelet archives of the abandoned attempt: of its pod, namespace and containers exactly, and
   * written since it started (never another namespace's, whose names may share the prefix).
   */
  private void deleteLeftoverKubeletArchives(Checkpoint checkpoint) {
    CheckpointStatus status = checkpoint.getStatus();
    List<String> containers = status.containers == null ? List.of()
        : status.containers.stream().map(c -> c.name).toList();
    Instant started = status.startTime == null ? Instant.MIN
        : Instant.parse(status.startTime).minus(KUBELET_CLOCK_SLACK);
    Predicate<String> ours = KubeletArchiveNames.of(checkpoint.getMetadata().getNamespace(),
        checkpoint.getSpec().target.pod.name, containers, started);
    try (DirectoryStream<Path> archives = Files.newDirectoryStream(config.kubelet().checkpointDir(),
        archive -> ours.test(archive.getFileName().toString()))) {
      archives.forEach(PodCheckpointJob::deleteKubeletCopy);
    } catch (IOException e) {
      log.warn("could not look for leftover kubelet archives in {}: {}", config.kubelet().checkpointDir(), e.getMessage());
    }
  }
}
