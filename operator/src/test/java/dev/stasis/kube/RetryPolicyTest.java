package dev.stasis.kube;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RetryPolicyTest {

  @Test
  void waitsDoubleFromTheBaseUpToTheCap() {
    RetryPolicy policy = RetryPolicy.DEFAULT;
    assertThat(policy.delayAfter(1)).isEqualTo(Duration.ofSeconds(10));
    assertThat(policy.delayAfter(2)).isEqualTo(Duration.ofSeconds(20));
    assertThat(policy.delayAfter(3)).isEqualTo(Duration.ofSeconds(40));
    assertThat(policy.delayAfter(5)).isEqualTo(Duration.ofSeconds(160));
    assertThat(policy.delayAfter(6)).isEqualTo(Duration.ofMinutes(5));
    assertThat(policy.delayAfter(1000)).as("no overflow").isEqualTo(Duration.ofMinutes(5));
  }

  @Test
  void aShortBaseForTestsKeepsTheDefaultCap() {
    RetryPolicy policy = RetryPolicy.withBase(Duration.ofMillis(500));
    assertThat(policy.delayAfter(1)).isEqualTo(Duration.ofMillis(500));
    assertThat(policy.delayAfter(3)).isEqualTo(Duration.ofSeconds(2));
    assertThat(policy.cap()).isEqualTo(Duration.ofMinutes(5));
    assertThatThrownBy(() -> RetryPolicy.withBase(Duration.ZERO)).isInstanceOf(IllegalArgumentException.class);
  }

  @ParameterizedTest
  @ValueSource(strings = {"StorageFailed", "StorageUnavailable", "DownloadFailed", "KubeletUnreachable",
      "KubeletTimeout", "KubeletFailed", "RegistryUnreachable", "AgentRestarted"})
  void failuresOutsideTheRequestThatMayPassAreRetried(String reason) {
    assertThat(RetryPolicy.DEFAULT.isTransient(reason)).isTrue();
  }

  /** Retrying bad input would only fail again; a stopped agent's cut-off work is not retried by it either. */
  @ParameterizedTest
  @ValueSource(strings = {"ProcessNotFound", "PidNotAllowed", "InvalidPid", "ProcessTargetNotAllowed",
      "StorageNotAllowed", "StorageNotFound", "StorageMisconfigured", "CriuMissing", "CriuTooOld", "CriuDumpFailed", "CriuRestoreFailed",
      "ArchiveCorrupted", "ArchiveMissing", "ManifestMissing", "ManifestInvalid", "PreflightPathMissing",
      "KubeletForbidden", "KubeletUntrusted", "PodMoved", "WorkDirUnavailable", "AgentError", "AgentShutdown"})
  void badInputAndRefusalsFailAtOnce(String reason) {
    assertThat(RetryPolicy.DEFAULT.isTransient(reason)).isFalse();
    assertThat(RetryPolicy.DEFAULT.retries(reason, 1, 3)).isFalse();
  }

  @Test
  void backoffLimitCountsRetriesAfterTheFirstAttempt() {
    String storage = "StorageFailed";
    assertThat(RetryPolicy.DEFAULT.retries(storage, 1, 0)).as("backoffLimit 0: one attempt").isFalse();
    assertThat(RetryPolicy.DEFAULT.retries(storage, 1, 1)).isTrue();
    assertThat(RetryPolicy.DEFAULT.retries(storage, 2, 1)).as("backoffLimit 1: two attempts").isFalse();
    assertThat(RetryPolicy.DEFAULT.retries(storage, 3, 3)).isTrue();
    assertThat(RetryPolicy.DEFAULT.retries(storage, 4, 3)).isFalse();
  }

  @Test
  void messagesNameTheAttemptTheReasonAndTheWait() {
    assertThat(RetryPolicy.retryMessage(2, 3, "StorageFailed", "S3 answered 503", Duration.ofSeconds(20)))
        .isEqualTo("attempt 2/4 failed (StorageFailed): S3 answered 503; retrying in 20s");
    assertThat(RetryPolicy.finalMessage("StorageFailed", "S3 answered 503", 2, 1))
        .isEqualTo("failed after 2 attempts (spec.backoffLimit 1 reached); the last: S3 answered 503");
    assertThat(RetryPolicy.finalMessage("CriuDumpFailed", "CRIU failed", 2, 3))
        .as("a permanent failure after a retried one does not blame the limit")
        .isEqualTo("failed after 2 attempts; the last: CRIU failed");
    assertThat(RetryPolicy.finalMessage("StorageFailed", "S3 answered 503", 1, 0))
        .as("one attempt: the message as it was").isEqualTo("S3 answered 503");
  }
}
