package dev.stasis.agent;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class WorkFailureTest {

  @Test
  void theFinalFailureKeepsItsReasonAndCriuLogAndSaysHowOftenItWasTried() {
    WorkFailure storage = new WorkFailure("StorageFailed", "S3 answered 503", "criu: last lines");
    WorkFailure last = storage.afterAttempts(2, 1);
    assertThat(last.reason()).isEqualTo("StorageFailed");
    assertThat(last.logTail()).isEqualTo("criu: last lines");
    assertThat(last.getMessage()).isEqualTo(
        "failed after 2 attempts (spec.backoffLimit 1 reached); the last: S3 answered 503");
    assertThat(storage.afterAttempts(1, 0)).as("one attempt: the failure as it was").isSameAs(storage);
  }
}
