package dev.stasis.operator;

import dev.stasis.api.AgentWorkStatus;
import dev.stasis.api.Conditions;
import dev.stasis.kube.EventRecorder;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.StatusWriter;
import io.fabric8.kubernetes.client.CustomResource;
import java.time.Clock;
import java.time.Duration;
import java.util.Optional;

/**
 * The operator's share of spec.backoffLimit: a refusal that may pass by itself (a storage that is
 * down when a Checkpoint is assigned or a Restore placed) leaves the resource Pending and is tried
 * again after the agents' backoff, each try counted as an attempt; only the last one fails it. A
 * checkpoint due while S3 is briefly unreachable thus waits for S3 instead of failing at once.
 */
final class RefusalRetries {
  private final RetryPolicy policy;
  private final StatusWriter statusWriter;
  private final EventRecorder events;
  private final Clock clock;

  RefusalRetries(RetryPolicy policy, StatusWriter statusWriter, EventRecorder events, Clock clock) {
    this.policy = policy;
    this.statusWriter = statusWriter;
    this.events = events;
    this.clock = clock;
  }

  /** The time left before the retry this status waits for; empty when none is due later. */
  Optional<Duration> untilRetry(AgentWorkStatus status) {
    return RetryPolicy.untilRetry(status, clock.instant());
  }

  /**
   * When the refusal is transient and attempts are left, writes {@code waiting} (the kind's Pending
   * status, filled in by the caller) with this attempt counted, the Retrying condition and the time
   * of the next try, records a Retrying Event, and returns the wait. Empty when it must fail now.
   */
  <S extends AgentWorkStatus> Optional<Duration> retryLater(CustomResource<?, S> resource, Refusal refusal,
      int backoffLimit, S waiting) {
    int attempt = attemptsBefore(resource) + 1;
    if (!policy.retries(refusal.reason(), attempt, backoffLimit)) {
      return Optional.empty();
    }
    Duration delay = policy.delayAfter(attempt);
    String message = RetryPolicy.retryMessage(attempt, backoffLimit, refusal.reason(), refusal.getMessage(), delay);
    Long generation = resource.getMetadata().getGeneration();
    waiting.attempts = attempt;
    waiting.observedGeneration = generation;
    waiting.waitForRetry(refusal.reason(), message, clock.instant().plus(delay).toString(), generation);
    Conditions.set(waiting, Conditions.COMPLETE, false, refusal.reason(), message, generation);
    statusWriter.replace(resource, waiting);
    events.warning(resource, "Retrying", message);
    return Optional.of(delay);
  }

  /**
   * Fills in {@code failed} (a fresh status of the kind) as the refusal's final failure; when earlier
   * attempts were retried, the attempts are counted and the message says how often it was tried.
   */
  <S extends AgentWorkStatus> void fail(CustomResource<?, S> resource, Refusal refusal, int backoffLimit, S failed) {
    int before = attemptsBefore(resource);
    Long generation = resource.getMetadata().getGeneration();
    failed.observedGeneration = generation;
    if (before > 0) {
      failed.attempts = before + 1;
      failed.conditions.addAll(resource.getStatus().conditions);
    }
    failed.fail(refusal.reason(),
        RetryPolicy.finalMessage(refusal.reason(), refusal.getMessage(), before + 1, backoffLimit), generation);
  }

  /**
   * What an assignment keeps of the waiting: the attempts so far (the agent counts on from them)
   * and the conditions (Retrying turns False when the work ends, as after the agent's own retries).
   */
  static <S extends AgentWorkStatus> void carryAttempts(CustomResource<?, S> resource, S assigned) {
    if (attemptsBefore(resource) > 0) {
      assigned.attempts = attemptsBefore(resource);
      assigned.conditions.addAll(resource.getStatus().conditions);
    }
  }

  private static int attemptsBefore(CustomResource<?, ? extends AgentWorkStatus> resource) {
    return resource.getStatus() == null ? 0 : resource.getStatus().attempts();
  }
}
