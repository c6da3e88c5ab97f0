package dev.stasis.cli;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.NodeCheckpointWorker;
import dev.stasis.agent.NodeProfilePublisher;
import dev.stasis.agent.NodeRestoreWorker;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.Labels;
import dev.stasis.kube.ProcessTargetPolicy;
import dev.stasis.operator.CheckpointReconciler;
import dev.stasis.operator.CheckpointStorageReconciler;
import dev.stasis.operator.RestoreReconciler;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.Operator;
import java.util.Set;

/** Wires the two roles onto a JOSDK {@link Operator}; {@code stasis local} puts both on one. */
public final class Roles {
  private Roles() {}

  /** JOSDK settings every role uses. Status writes go through our optimistic-lock StatusWriter. */
  public static Operator newOperator(KubernetesClient client) {
    return new Operator(o -> o.withKubernetesClient(client)
        .withUseSSAToPatchPrimaryResource(false)
        .withCloseClientOnStop(false)
        .withStopOnInformerErrorDuringStartup(true));
  }

  public static void registerOperator(
      Operator operator, KubernetesClient client, String instance, Set<String> processTargetNamespaces) {
    var events = new EventRecorder(client, "operator", instance);
    var processTargets = new ProcessTargetPolicy(client, processTargetNamespaces);
    operator.register(new CheckpointReconciler(client, events, processTargets));
    operator.register(new RestoreReconciler(client, events));
    operator.register(new CheckpointStorageReconciler(client, events));
  }

  /** The agent sees only the work labelled for its node (Velero's node-agent pattern). */
  public static NodeProfilePublisher registerAgent(Operator operator, KubernetesClient client, AgentConfig config) {
    var events = new EventRecorder(client, "agent", config.nodeName());
    String selector = Labels.nodeSelector(config.nodeName());
    operator.register(new NodeCheckpointWorker(client, config, events),
        o -> o.withName("node-checkpoint-" + config.nodeName()).withLabelSelector(selector));
    operator.register(new NodeRestoreWorker(client, config, events),
        o -> o.withName("node-restore-" + config.nodeName()).withLabelSelector(selector));
    return new NodeProfilePublisher(client, config);
  }
}
