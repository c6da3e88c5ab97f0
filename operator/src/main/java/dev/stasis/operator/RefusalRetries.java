package dev.stasis.operator;

import dev.stasis.api.AgentWorkStatus;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.WorkLifecycle;
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
  private final Clock clock;

  RefusalRetries(RetryPolicy policy, Clock clock) {
    this.policy = policy;
    this.clock = clock;
  }

  /** The time left before the retry this status waits for; empty when none is due later. */
  Optional<Duration> untilRetry(AgentWorkStatus status) {
    return RetryPolicy.untilRetry(status, clock.instant());
  }

  /**
   * When the refusal is transient and attempts are left, writes {@code waiting} (the kind's Pending
   * status, filled in by the caller) as the lifecycle's retry of a refusal, and returns the wait.
   * Empty when it must fail now.
   */
  <S extends AgentWorkStatus, R extends CustomResource<?, S>> Optional<Duration> retryLater(
      WorkLifecycle<S, R> lifecycle, R resource, Refusal refusal, int backoffLimit, S waiting) {
    int attempt = attemptsBefore(resource) + 1;
    if (!policy.retries(refusal.reason(), attempt, backoffLimit)) {
      return Optional.empty();
    }
    Duration delay = policy.delayAfter(attempt);
    String message = RetryPolicy.retryMessage(attempt, backoffLimit, refusal.reason(), refusal.getMessage(), delay);
    lifecycle.retryRefusalLater(resource, waiting, attempt, refusal.reason(), message,
        clock.instant().plus(delay).toString());
    return Optional.of(delay);
  }

  /**
   * Fails the resource with the refusal ({@code failed}: a fresh status of the kind); when earlier
   * attempts were retried, the message says how often it was tried.
   */
  <S extends AgentWorkStatus, R extends CustomResource<?, S>> void fail(WorkLifecycle<S, R> lifecycle, R resource,
      Refusal refusal, int backoffLimit, S failed) {
    lifecycle.refuse(resource, failed, refusal.reason(),
        RetryPolicy.finalMessage(refusal.reason(), refusal.getMessage(), attemptsBefore(resource) + 1, backoffLimit));
  }

  private static int attemptsBefore(CustomResource<?, ? extends AgentWorkStatus> resource) {
    return resource.getStatus() == null ? 0 : resource.getStatus().attempts();
  }
}
