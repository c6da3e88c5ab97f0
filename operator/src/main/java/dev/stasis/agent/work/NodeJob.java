package dev.stasis.agent.work;

import dev.stasis.agent.AgentConfig;
import dev.stasis.kube.EventRecorder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One kind of node work (a process or a pod checkpoint, a process or a pod restore), which the
 * agent's workers route each resource to ({@link NodeWork#route}): three steps, each on its own
 * thread of the agent, and what every kind reaches through the agent's {@link NodeWork}: the API
 * server, the agent's settings and shutdown, the storages and Events. Status writes go through the
 * lifecycles ({@code work.checkpoints}, {@code work.restores}).
 */
public abstract class NodeJob<R> {
  private static final Logger log = LoggerFactory.getLogger(NodeJob.class);
  /** How often to look again whether the CRIU a dead agent started has ended or finished its restore. */
  protected static final Duration ABANDONED_CRIU_POLL = Duration.ofSeconds(1);
  /** How soon to look again at work whose grant is sealed to a key this agent no longer has (the operator reseals it). */
  protected static final Duration GRANT_WAIT = Duration.ofSeconds(5);
  /** The longest wait between two tries of a status write that must not be given up. */
  private static final Duration RECORD_RETRY_MAX = Duration.ofSeconds(30);

  protected final NodeWork work;
  protected final KubernetesClient client;
  protected final AgentConfig config;
  protected final AgentShutdown shutdown;
  protected final StorageAccess storages;
  protected final EventRecorder events;

  protected NodeJob(NodeWork work) {
    this.work = work;
    this.client = work.client;
    this.config = work.config;
    this.shutdown = work.shutdown;
    this.storages = work.storages;
    this.events = work.events;
  }

  /**
   * What needs no slot, checked before the work waits for one: true when it refused the work (and
   * wrote so). A resource it lets through is checked again when its turn comes.
   */
  public boolean refusedBeforeQueueing(R resource) {
    return false;
  }

  /** Runs in one of the node's work slots, on a fresh copy that was pending on this node. */
  public abstract void take(R resource);

  /**
   * The work of an agent that died (or could not write its outcome): in its attempt on this node
   * but in no slot of this agent, as a fresh copy shows. Returns when to look again, if it cannot be
   * resolved yet.
   */
  public abstract Optional<Duration> resolveAbandoned(R resource);

  /**
   * Writes what has happened on the node and cannot be undone (a tree restored, a workload ended):
   * a failing API server does not make it untrue, so the write is tried again, waiting longer each
   * time, until it succeeds. Only when the agent stops does it give up and throw: the work folder,
   * kept until the write succeeded, tells the next agent of this node what happened.
   */
  protected <T> T recordUntilWritten(String what, Supplier<T> write) {
    Duration wait = Duration.ofSeconds(1);
    while (true) {
      try {
        return write.get();
      } catch (KubernetesClientException e) {
        if (!shutdown.acceptsWork()) {
          throw e;
        }
        log.warn("could not record {}, trying again in {}s: {}", what, wait.toSeconds(), e.getMessage());
        try {
          Thread.sleep(wait.toMillis());
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          throw e;
        }
        wait = wait.multipliedBy(2).compareTo(RECORD_RETRY_MAX) > 0 ? RECORD_RETRY_MAX : wait.multipliedBy(2);
      }
    }
  }
}
