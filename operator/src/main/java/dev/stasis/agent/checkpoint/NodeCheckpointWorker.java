package dev.stasis.agent.checkpoint;

import dev.stasis.agent.work.NodeWork;
import dev.stasis.api.Checkpoint;
import io.javaoperatorsdk.operator.api.reconciler.Context;
import io.javaoperatorsdk.operator.api.reconciler.ControllerConfiguration;
import io.javaoperatorsdk.operator.api.reconciler.Reconciler;
import io.javaoperatorsdk.operator.api.reconciler.UpdateControl;

/**
 * The checkpoints the operator assigned to this node (the informer sees only those labelled for
 * it), each routed to the job of its kind: a process's to {@link ProcessCheckpointJob}, a pod's to
 * {@link PodCheckpointJob}.
 */
@ControllerConfiguration(name = "node-checkpoint", generationAwareEventProcessing = false)
public class NodeCheckpointWorker implements Reconciler<Checkpoint> {
  private final NodeWork work;
  private final ProcessCheckpointJob processes;
  private final PodCheckpointJob pods;

  public NodeCheckpointWorker(NodeWork work) {
    this.work = work;
    this.processes = new ProcessCheckpointJob(work);
    this.pods = new PodCheckpointJob(work);
  }

  @Override
  public UpdateControl<Checkpoint> reconcile(Checkpoint checkpoint, Context<Checkpoint> context) {
    return work.route(checkpoint, work.checkpoints, c -> c.getSpec().target.pod != null ? pods : processes);
  }
}
