package dev.stasis.agent.restore;

import dev.stasis.agent.WorkFailure;
import dev.stasis.agent.process.NodeProcess;
import dev.stasis.agent.process.ProcessTree;
import dev.stasis.agent.process.TravellingFiles;
import dev.stasis.agent.work.NodeJob;
import dev.stasis.agent.work.NodeWork;
import dev.stasis.agent.work.WorkDirs;
import dev.stasis.agent.work.WorkProgress;
import dev.stasis.disk.FreeSpace;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.Compatibility;
import dev.stasis.api.ProcessIdentity;
import dev.stasis.api.ProgressStatus;
import dev.stasis.api.Restore;
import dev.stasis.archive.ArchiveAuthenticationException;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveReader;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.criu.Criu;
import dev.stasis.criu.CriuException;
import dev.stasis.criu.RestoreOptions;
import dev.stasis.criu.RestoredTree;
import dev.stasis.kube.RecordedManifest;
import dev.stasis.kube.WorkGrants;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Restores the process checkpoints the operator placed on this node: the manifest, checked against
 * the digest the Checkpoint's status recorded; a pre-flight check that this node can run the
 * checkpoint (its CPU, the paths it needs); download, verify and unpack in one pass (CRIU sees no
 * byte before the archive matched the sha256 and size the status recorded), then {@code criu
 * restore}. The agent's CRIU child stays the restored tree's parent, so the agent sees the tree
 * exit and nothing is left a zombie.
 */
final class ProcessRestoreJob extends NodeJob<Restore> {
  private static final Logger log = LoggerFactory.getLogger(ProcessRestoreJob.class);
  private static final Duration RESTORE_TIMEOUT = Duration.ofMinutes(10);

  private final Preflight preflight;

  ProcessRestoreJob(NodeWork work) {
    super(work);
    this.preflight = new Preflight(config.criu(), config.hostRoot());
  }

  @Override
  public void take(Restore restore) {
    var restoring = work.restores.start(restore, config.nodeName(),
        "pre-flight check of this node, then download and verification of the archive");
    if (restoring.isEmpty()) {
      return;
    }
    try (WorkProgress progress = work.progress(restoring.get(), work.restores)) {
      restore(restoring.get(), progress);
    }
  }

  /** Downloads, verifies and unpacks the archive, then has CRIU restore the tree; reports how far it came. */
  private void restore(Restore restore, WorkProgress progress) {
    Path workDir = workDir(restore);
    Path images = workDir.resolve("images");
    Checkpoint checkpoint;
    List<String> putBack;
    try {
      checkpoint = checkpoint(restore);
      work.processTargets.requireRestorable(restore.getMetadata().getNamespace());
      CheckpointStorage storage = storages.find(checkpoint.getStatus().storage);
      WorkGrants.Grant grant = storages.grant(restore);
      try (ObjectStore store = storages.open(storage, grant)) {
        RecordedManifest recorded = storages.manifest(store, checkpoint, null);
        requireCriu();
        preflight(restore, recorded.manifest(), workDir);
        requireRoomFor(recorded, workDir);
        // the archive, then (deduplicated) the memory images written from their chunks
        Manifest.Chunks chunks = recorded.manifest().chunks;
        progress.step(ProgressStatus.DOWNLOADING, recorded.archive().storedBytes()
            + (chunks != null ? chunks.imagesBytes : 0));
        download(store, recorded, storages.decryptionKey(recorded, grant).orElse(null),
            storages.chunkKey(recorded, grant).orElse(null), images, progress);
        putBack = TravellingFiles.putBack(recorded.manifest().paths, images, config.hostRoot());
      }
    } catch (PreflightFailed failure) {
      WorkDirs.delete(workDir);
      if (restore.getSpec().placementOrDefaults().retryOtherNodes()) {
        work.restores.handBack(restore, config.nodeName(), failure.reason(),
            failure.getMessage() + "; retrying on another node (spec.placement.retryOtherNodes)");
      } else {
        failPreflight(restore, failure);
      }
      return;
    } catch (WorkFailure failure) {
      WorkDirs.delete(workDir);
      failOrRetry(restore, failure);
      return;
    } catch (RuntimeException e) {
      WorkDirs.delete(workDir);
      log.error("restore {} failed unexpectedly", restore.getMetadata().getName(), e);
      fail(restore, new WorkFailure("AgentError", "the agent failed unexpectedly: " + e));
      return;
    }
    // From here on CRIU runs. Its note, log and pid file in the work folder are what tells whether
    // a tree was restored, so the folder stays until the outcome is in the status.
    RestoredTree tree;
    progress.step(ProgressStatus.RESTORING, progress.bytesExpected());
    try {
      tree = start(checkpoint.getSpec().optionsOrDefaults(), images, workDir);
    } catch (WorkFailure failure) {
      Restore failed = restore;
      recordUntilWritten("the failure of restore " + restore.getMetadata().getName(), () -> fail(failed, failure));
      WorkDirs.delete(workDir);
      return;
    }
    Restore restored = restore;
    String travelled = putBack.isEmpty() ? "" : "; put back " + putBack.size() + " file(s) that travelled with the"
        + " checkpoint: " + String.join(", ", putBack.subList(0, Math.min(putBack.size(), 5)))
        + (putBack.size() > 5 ? " and " + (putBack.size() - 5) + " more" : "");
    ProcessIdentity root = root(tree.pid());
    recordUntilWritten("restore " + restore.getMetadata().getName() + " as PID " + tree.pid(),
        () -> work.restores.restored(restored, tree.pid(), root, "restored on node " + config.nodeName() + " as PID "
            + tree.pid() + travelled));
    // After the report: the tree runs, and deleting a GiB of images takes a quarter of a second.
    WorkDirs.delete(images);
    watch(restore, tree.pid(), tree.onExit(), workDir);
  }

  /**
   * Only failures before CRIU ran reach here as transient (reading the manifest or the archive from
   * storage): CRIU's own failures are never retried, so a retry cannot leave two restored copies.
   */
  private void failOrRetry(Restore restore, WorkFailure failure) {
    int backoffLimit = restore.getSpec().backoffLimitOrDefault();
    if (work.retryLater(work.restores, restore, failure, backoffLimit)) {
      return;
    }
    fail(restore, failure.afterAttempts(restore.getStatus().attempts(), backoffLimit));
  }

  private Checkpoint checkpoint(Restore restore) throws WorkFailure {
    String name = restore.checkpointName();
    // Only ever the Restore's own namespace, whatever the spec says (the operator checked too).
    Checkpoint checkpoint = client.resources(Checkpoint.class)
        .inNamespace(restore.getMetadata().getNamespace()).withName(name).get();
    if (checkpoint == null || checkpoint.getStatus() == null || checkpoint.getStatus().archive == null) {
      throw new WorkFailure("CheckpointNotFound", "Checkpoint '" + name + "' or its archive is gone");
    }
    return checkpoint;
  }

  /**
   * The archive the Checkpoint recorded, at the key the layout gives, checked against the recorded
   * sha256; for a deduplicated checkpoint then its memory images, put together from their chunks
   * and checked chunk by chunk and image by image ({@link ChunkedImagesDownload}).
   *
   * @param chunkKey the namespace's chunk key of a deduplicated checkpoint, else null
   */
  private void download(ObjectStore store, RecordedManifest recorded, BoundKey decryptWith, ChunkKey chunkKey,
      Path images, WorkProgress progress) throws WorkFailure {
    String key = recorded.archiveKey();
    try (InputStream in = progress.counting(StasisMetrics.meteredDownload(config.nodeName(), store.open(key)))) {
      new ArchiveReader().extract(in, images, recorded.manifest().archive.codec, recorded.archive(), decryptWith);
      if (chunkKey != null) {
        long archived = progress.bytesDone();
        var written = new ChunkedImagesDownload(store, recorded, chunkKey)
            .writeInto(images, fetched -> progress.done(archived + fetched));
        StasisMetrics.chunksDownloaded(config.nodeName(), recorded.manifest().chunks.indexBytes
            + written.fetchedBytes());
        log.info("the chunks of {}: {} images of {} chunks ({} distinct, {} bytes stored) read by {} requests of {}"
            + " bytes", store.uri(key), written.images(), written.chunks(), written.distinctChunks(),
            written.distinctStoredBytes(), written.requests(), written.fetchedBytes());
      }
    } catch (ChunkedImagesDownload.ChunkMissingException e) {
      throw new WorkFailure("ArchiveMissing", e.getMessage() + "; restore another checkpoint");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new WorkFailure("DownloadFailed", "downloading the chunks of " + store.uri(key) + " was interrupted");
    } catch (ArchiveAuthenticationException e) {
      throw new WorkFailure("ArchiveNotAuthentic", e.getMessage());
    } catch (ArchiveIntegrityException e) {
      throw new WorkFailure("ArchiveCorrupted", e.getMessage());
    } catch (ObjectNotFoundException e) {
      throw new WorkFailure("ArchiveMissing", "the archive is missing (" + e.getMessage()
          + ") although its manifest exists; restore another checkpoint");
    } catch (IOException e) {
      if (String.valueOf(e.getMessage()).contains(Criu.NO_SPACE)) {
        throw new WorkFailure("WorkDirFull", "unpacking the archive into " + images + " failed: the work folder is"
            + " full (" + Criu.NO_SPACE + "); free space there or give the agent a larger --work-dir");
      }
      throw new WorkFailure("DownloadFailed", "downloading " + store.uri(key) + " failed: " + e.getMessage());
    }
  }

  /** The images unpacked take what the archive held before compression: without that room, nothing is downloaded. */
  private void requireRoomFor(RecordedManifest recorded, Path workDir) throws WorkFailure {
    long needed = recorded.archive().sizeBytes();
    long free;
    try {
      free = FreeSpace.usableBytes(workDir);
    } catch (IOException e) {
      throw new WorkFailure("WorkDirUnavailable", "cannot tell the free space in the work folder " + workDir + ": "
          + e.getMessage());
    }
    if (free < needed) {
      throw new WorkFailure("WorkDirFull", "the work folder " + workDir + " on node " + config.nodeName() + " has "
          + free + " bytes free, the checkpoint's images need " + needed + ": nothing was downloaded. Free space there,"
          + " give the agent a larger --work-dir, or restore on another node (spec.placement)");
    }
  }

  private void preflight(Restore restore, Manifest manifest, Path workDir) throws WorkFailure {
    boolean strict = restore.getSpec().placementOrDefaults().compatibilityOrDefault() == Compatibility.Strict;
    preflight.check(manifest, strict, workDir, config.nodeName());
  }

  private void requireCriu() throws WorkFailure {
    try {
      config.criu().requireUsable();
    } catch (CriuException e) {
      throw new WorkFailure(e.reason(), e.getMessage() + " (node " + config.nodeName() + ")");
    }
  }

  private RestoredTree start(CheckpointOptions options, Path images, Path workDir) throws WorkFailure {
    var restoreOptions = new RestoreOptions(images, workDir, ProcessTree.options(options), RESTORE_TIMEOUT);
    try {
      return config.criu().restore(restoreOptions);
    } catch (CriuException e) {
      throw new WorkFailure(e.reason(), e.getMessage(), e.logTail());
    } catch (IOException e) {
      throw new WorkFailure("WorkDirUnavailable", "cannot prepare the work folder " + workDir + ": " + e.getMessage());
    }
  }

  /** Reports the end of the restored tree, which CRIU reaps for us, and cleans up after it. */
  private void watch(Restore restore, int pid, CompletableFuture<?> exit, Path workDir) {
    watch(restore, " (PID " + pid + ")", exit, workDir);
  }

  private void watch(Restore restore, String pid, CompletableFuture<?> exit, Path workDir) {
    exit.thenRun(() -> {
      WorkDirs.delete(workDir);
      try {
        Restore current = client.resource(restore).get();
        if (current == null) {
          return;
        }
        work.restores.processExited(current, pid);
      } catch (RuntimeException e) {
        log.warn("could not report the end of restore {}: {}", restore.getMetadata().getName(), e.getMessage());
      }
    });
  }

  private Optional<Restore> fail(Restore restore, WorkFailure failure) {
    log.warn("restore {}/{} failed: {} {}", restore.getMetadata().getNamespace(), restore.getMetadata().getName(),
        failure.reason(), failure.getMessage());
    return work.restores.fail(restore, failure.reason(), failure.getMessage(), failure.logTail());
  }

  private void failPreflight(Restore restore, WorkFailure failure) {
    log.warn("restore {}/{} failed its pre-flight: {} {}", restore.getMetadata().getNamespace(),
        restore.getMetadata().getName(), failure.reason(), failure.getMessage());
    work.restores.failPreflight(restore, config.nodeName(), failure.reason(), failure.getMessage());
  }

  private Path workDir(Restore restore) {
    return config.workDir().resolve("restores").resolve(restore.getMetadata().getUid());
  }

  /**
   * A restore left Restoring by an agent that died (or whose status write failed) is never tried
   * again: its CRIU may outlive the agent and restore the tree anyway, and a second attempt could
   * make two copies of it. What happened is decided from what CRIU left in the work folder: a tree
   * it restored that still runs is taken over (Completed); one that was restored and has ended
   * since is Completed and Exited; without "Restore finished successfully" in CRIU's log nothing
   * was restored, the restore fails and only then is its work folder deleted.
   */
  @Override
  public Optional<Duration> resolveAbandoned(Restore restore) {
    Path workDir = workDir(restore);
    Optional<Integer> restored = Criu.restoredIn(workDir);
    if (restored.isPresent()) {
      adopt(restore, restored.get(), workDir);
      return Optional.empty();
    }
    if (Criu.stillRunningIn(workDir).isPresent()) {
      // Without the restore's -d, CRIU stays the tree's parent and runs as long as the tree.
      return Optional.of(ABANDONED_CRIU_POLL);
    }
    if (Criu.restoreFinishedIn(workDir)) {
      endedSinceRestored(restore, workDir);
      return Optional.empty();
    }
    String what = Criu.startedIn(workDir) ? "; CRIU did not finish restoring, so nothing was restored" : "; nothing was restored";
    fail(restore, new WorkFailure("AgentRestarted", "the agent on node " + config.nodeName()
        + " restarted while this restore ran" + what + ": create a new Restore"));
    WorkDirs.delete(workDir);
    return Optional.empty();
  }

  private void adopt(Restore restore, int pid, Path workDir) {
    WorkDirs.delete(workDir.resolve("images"));
    work.restores.restored(restore, pid, root(pid), "restored on node " + config.nodeName() + " as PID " + pid
        + " (the agent restarted meanwhile and took the running tree over)");
    ProcessHandle.of(pid).ifPresentOrElse(tree -> watch(restore, pid, tree.onExit(), workDir),
        () -> watch(restore, pid, CompletableFuture.completedFuture(null), workDir));
  }

  /**
   * The restored tree's root as an identity, looked up while CRIU, its parent, still holds it (so the
   * PID cannot have gone to another process yet); null once it has ended.
   */
  private ProcessIdentity root(int pid) {
    return NodeProcess.find(pid).map(process -> {
      ProcessIdentity identity = process.toStatus();
      identity.node = config.nodeName();
      return identity;
    }).orElse(null);
  }

  /** CRIU restored the tree, and it ended before an agent could report it: both are the truth. */
  private void endedSinceRestored(Restore restore, Path workDir) {
    Optional<Integer> pid = Criu.restoredPidIn(workDir);
    work.restores.restored(restore, pid.orElse(null), null, "restored on node " + config.nodeName() + pid.map(p -> " as PID " + p).orElse("")
        + "; the tree has ended since (the agent restarted meanwhile)");
    watch(restore, pid.map(p -> " (PID " + p + ")").orElse(""), CompletableFuture.completedFuture(null), workDir);
  }
}
