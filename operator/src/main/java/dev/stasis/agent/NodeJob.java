package dev.stasis.agent;

import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.StatusWriter;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.time.Duration;

/**
 * What every kind of node work reaches through the agent's {@link NodeWork}: the API server, the
 * agent's settings and shutdown, the storages, status writes and Events.
 */
abstract class NodeJob {
  /** How often to look again whether the CRIU a dead agent started has ended or finished its restore. */
  static final Duration ABANDONED_CRIU_POLL = Duration.ofSeconds(1);
  /** How soon to look again at work whose grant is sealed to a key this agent no longer has (the operator reseals it). */
  static final Duration GRANT_WAIT = Duration.ofSeconds(5);

  final NodeWork work;
  final KubernetesClient client;
  final AgentConfig config;
  final AgentShutdown shutdown;
  final StorageAccess storages;
  final StatusWriter statusWriter;
  final EventRecorder events;

  NodeJob(NodeWork work) {
    this.work = work;
    this.client = work.client;
    this.config = work.config;
    this.shutdown = work.shutdown;
    this.storages = work.storages;
    this.statusWriter = work.statusWriter;
    this.events = work.events;
  }
}
