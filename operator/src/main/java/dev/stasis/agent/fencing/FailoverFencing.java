package dev.stasis.agent.fencing;

import dev.stasis.agent.process.NodeProcess;
import dev.stasis.agent.process.ProcessTree;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.ProcessIdentity;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.kube.AgentHeartbeat;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Ends the old copies of process trees that ran on this node and were failed over to another while
 * the node was lost (CheckpointSchedule failover.onNodeLost): a node that comes back must not run
 * them next to the new ones. It looks at start and with every heartbeat for failover Restores
 * labelled {@value Labels#FAILOVER_FROM} with this node that completed (never before: until the new
 * copy runs, the old one may be the only one), and ends the tree whose root the failed-over
 * Checkpoint's status.process recorded — by PID, start time and boot id, never by PID alone: a PID
 * the kernel gave to another process since, or one from before a reboot, names nothing to end.
 */
public final class FailoverFencing implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(FailoverFencing.class);

  private final KubernetesClient client;
  private final String node;
  private final EventRecorder events;
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread t = new Thread(r, "failover-fencing");
    t.setDaemon(true);
    return t;
  });

  public FailoverFencing(KubernetesClient client, String node, EventRecorder events) {
    this.client = client;
    this.node = node;
    this.events = events;
  }

  /** Fences now, then with every heartbeat: a node that only lost its network comes back without a restart. */
  public void start() {
    timer.scheduleWithFixedDelay(this::fenceLogged, 0, AgentHeartbeat.INTERVAL.toSeconds(), TimeUnit.SECONDS);
  }

  private void fenceLogged() {
    try {
      fence();
    } catch (RuntimeException e) {
      log.warn("could not look for failed-over process trees of node {}: {}", node, e.getMessage()); // and look again
    }
  }

  /** Ends each tree of this node that a completed failover restored elsewhere; returns how many. */
  public int fence() {
    int ended = 0;
    List<Restore> failovers = client.resources(Restore.class).inAnyNamespace().withLabel(Labels.FAILOVER_FROM, node)
        .list().getItems();
    for (Restore restore : failovers) {
      Optional<ProcessIdentity> old = failedOverProcess(restore);
      if (old.isPresent() && end(NodeProcess.of(old.get()))) {
        ended++;
        events.warning(restore, "Fenced", "ended the old copy of the process tree (PID " + old.get().pid + ", started "
            + old.get().startTime + ") on node " + node + ": while this node was lost it was restored on node "
            + restore.getStatus().node + (restore.getStatus().restoredPid == null ? ""
                : " (PID " + restore.getStatus().restoredPid + ")") + ", which runs on");
      }
    }
    return ended;
  }

  /**
   * The process a completed failover of this node moved elsewhere: its Checkpoint's status.process,
   * when the Checkpoint was taken on this node and the Restore is a schedule's failover.
   */
  private Optional<ProcessIdentity> failedOverProcess(Restore restore) {
    if (restore.getStatus() == null || restore.getStatus().phase != RestorePhase.Completed
        || node.equals(restore.getStatus().node) || !isScheduleOwned(restore)) {
      return Optional.empty();
    }
    Checkpoint checkpoint = client.resources(Checkpoint.class).inNamespace(restore.getMetadata().getNamespace())
        .withName(restore.checkpointName()).get();
    if (checkpoint == null || checkpoint.getStatus() == null || !node.equals(checkpoint.getStatus().node)) {
      return Optional.empty();
    }
    ProcessIdentity process = checkpoint.getStatus().process;
    return process == null || process.pid == null || process.startTicks == null || process.bootId == null
        ? Optional.empty() : Optional.of(process);
  }

  private static boolean isScheduleOwned(Restore restore) {
    var refs = restore.getMetadata().getOwnerReferences();
    return refs != null && refs.stream().anyMatch(r -> HasMetadata.getKind(CheckpointSchedule.class).equals(r.getKind()));
  }

  /**
   * Ends the tree under {@code root} if root is still that process: its members are found from it
   * now, each as the process it is, and each signalled through a pidfd (none that ended meanwhile
   * and whose PID was reused is touched).
   */
  private static boolean end(NodeProcess root) {
    if (!root.isRunning()) {
      return false;
    }
    List<NodeProcess> tree = ProcessTree.members(root.pid()).stream()
        .map(NodeProcess::find).flatMap(Optional::stream).toList();
    if (!root.isRunning()) {
      return false; // ended while its members were looked up: they may be another's now
    }
    boolean ended = root.signal(NodeProcess.Signal.KILL);
    tree.stream().filter(p -> !p.equals(root)).forEach(p -> p.signal(NodeProcess.Signal.KILL));
    return ended;
  }

  @Override
  public void close() {
    timer.shutdownNow();
  }
}
