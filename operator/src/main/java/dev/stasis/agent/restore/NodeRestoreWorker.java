package dev.stasis.agent.restore;

import dev.stasis.agent.work.NodeWork;
import dev.stasis.api.Restore;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;

/**
 * The restores the operator placed on this node (the informer sees only those labelled for it),
 * each routed to the job of its checkpoint's kind: a pod checkpoint's to {@link PodRestoreJob}, a
 * process checkpoint's to {@link ProcessRestoreJob}.
 */
@ControllerConfiguration(name = "node-restore", generationAwareEventProcessing = false)
public class NodeRestoreWorker implements Reconciler<Restore> {
  private final NodeWork work;
  private final ProcessRestoreJob processes;
  private final PodRestoreJob pods;

  public NodeRestoreWorker(NodeWork work) {
    this.work = work;
    this.processes = new ProcessRestoreJob(work);
    this.pods = new PodRestoreJob(work);
  }

  @Override
  public UpdateControl<Restore> reconcile(Restore restore, Context<Restore> context) {
    return work.route(restore, work.restores, r -> pods.podCheckpoint(r) != null ? pods : processes);
  }
}
