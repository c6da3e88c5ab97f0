package dev.stasis.kube;

import dev.stasis.api.AttemptedStatus;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Optional;
import java.util.Set;

/**
 * Which failures of a Checkpoint's or Restore's work are worth another attempt, and how long to
 * wait before it; the agents and the operator (for a storage that is down when it assigns) count
 * attempts against the same spec.backoffLimit. Only failures of something outside the request that
 * may come back by itself are retried: storage unreachable or answering 5xx, a kubelet that does
 * not answer, an agent that died mid-work. Bad
 * input (a PID that does not exist, a policy refusal, a CRIU that refuses the tree) fails at once:
 * trying again would only fail again. The wait doubles from {@code base} on each failed attempt, up
 * to {@code cap}: 10 s, 20 s, 40 s, ... 5 min by default.
 */
public record RetryPolicy(Duration base, Duration cap) {
  public static final Duration DEFAULT_BASE = Duration.ofSeconds(10);
  public static final Duration DEFAULT_CAP = Duration.ofMinutes(5);
  public static final RetryPolicy DEFAULT = new RetryPolicy(DEFAULT_BASE, DEFAULT_CAP);

  /** No node can restore a pod's containers now, but some could once their kubelet reaches its runtime again. */
  public static final String RUNTIME_UNREACHABLE = "RuntimeUnreachable";

  /**
   * The reasons of transient failures. Everything else is permanent. StorageUnavailable also
   * covers a storage that is misconfigured (no such bucket, access denied): the agent cannot tell
   * that from an outage with certainty, so it is retried too, but never more than backoffLimit times.
   */
  private static final Set<String> TRANSIENT = Set.of(
      "StorageFailed",      // writing the archive or manifest failed (network, 5xx, timeout)
      "StorageUnavailable", // the storage could not be read (network, 5xx, timeout), or its check failed
      "DownloadFailed",     // reading the archive failed midway (network, 5xx, timeout)
      "KubeletUnreachable", // no connection to the node's kubelet
      "KubeletTimeout",     // the kubelet did not answer in time
      "KubeletFailed",      // the kubelet answered an unexpected status (502, 503...)
      "RegistryUnreachable", // no connection to the checkpoint image registry (pod restores)
      "ApiServerUnavailable", // the record of a stored archive was not taken: nothing was ended, nothing kept
      "AgentRestarted",     // the agent died while the work ran; a new one resolved it
      "NodeKeyChanged",     // the agent made a new key; the operator seals the work's grant to it again
      RUNTIME_UNREACHABLE); // the only nodes that could restore a pod's containers cannot reach their runtime just now

  public RetryPolicy {
    if (base.isNegative() || base.isZero()) {
      throw new IllegalArgumentException("the retry backoff must be positive, got " + base);
    }
    if (cap.compareTo(base) < 0) {
      cap = base;
    }
  }

  /** A policy with this base wait and the default cap. */
  public static RetryPolicy withBase(Duration base) {
    return new RetryPolicy(base, DEFAULT_CAP);
  }

  public boolean isTransient(String reason) {
    return TRANSIENT.contains(reason);
  }

  /** The wait after the {@code failedAttempts}-th failed attempt (1 for the first): base × 2^(n-1), capped. */
  public Duration delayAfter(int failedAttempts) {
    Duration delay = base;
    for (int i = 1; i < failedAttempts && delay.compareTo(cap) < 0; i++) {
      delay = delay.multipliedBy(2);
    }
    return delay.compareTo(cap) > 0 ? cap : delay;
  }

  /** How long until the retry this status waits for is due; empty when it is due or none waits. */
  public static Optional<Duration> untilRetry(AttemptedStatus status, Instant now) {
    if (status == null || status.nextRetryTime() == null) {
      return Optional.empty();
    }
    try {
      Duration left = Duration.between(now, Instant.parse(status.nextRetryTime()));
      return left.isNegative() || left.isZero() ? Optional.empty() : Optional.of(left);
    } catch (DateTimeParseException e) {
      return Optional.empty(); // written by hand: try now
    }
  }

  /** Whether a failure for {@code reason} of attempt number {@code attempt} (1 for the first) is tried again. */
  public boolean retries(String reason, int attempt, int backoffLimit) {
    return isTransient(reason) && attempt <= backoffLimit;
  }

  /** "attempt 2/4 failed (StorageFailed): ...; retrying in 20s", for the status and the Event of a retry. */
  public static String retryMessage(int attempt, int backoffLimit, String reason, String message, Duration delay) {
    return "attempt " + attempt + "/" + (backoffLimit + 1) + " failed (" + reason + "): " + message
        + "; retrying in " + seconds(delay);
  }

  /** The final failure's message names how often it was tried when that was more than once. */
  public static String finalMessage(String reason, String message, int attempts, int backoffLimit) {
    if (attempts <= 1) {
      return message;
    }
    String limit = attempts > backoffLimit && TRANSIENT.contains(reason)
        ? " (spec.backoffLimit " + backoffLimit + " reached)" : "";
    return "failed after " + attempts + " attempts" + limit + "; the last: " + message;
  }

  private static String seconds(Duration d) {
    return d.toMillis() % 1000 == 0 ? d.toSeconds() + "s" : d.toMillis() + "ms";
  }
}
