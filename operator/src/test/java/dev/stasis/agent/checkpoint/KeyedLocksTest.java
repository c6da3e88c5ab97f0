package dev.stasis.agent.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class KeyedLocksTest {

  /** An agent checkpoints a new PID every few minutes for months: no lock of any of them stays. */
  @Test
  void theLockOfAKeyNobodyUsesIsForgotten() {
    KeyedLocks<Integer> locks = new KeyedLocks<>();
    for (int pid = 2; pid < 100_000; pid++) {
      locks.lock(pid).close();
    }
    assertThat(locks.inUse()).isZero();
  }

  @Test
  void aSecondHolderWaitsAndTheLockStaysUntilBothAreDone() throws Exception {
    KeyedLocks<Integer> locks = new KeyedLocks<>();
    CountDownLatch secondHolds = new CountDownLatch(1);
    CountDownLatch secondMayGo = new CountDownLatch(1);
    KeyedLocks.Held first = locks.lock(4242);
    CompletableFuture<Void> second = CompletableFuture.runAsync(() -> {
      try (KeyedLocks.Held held = locks.lock(4242)) {
        secondHolds.countDown();
        secondMayGo.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
    await().during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(2)).until(() -> secondHolds.getCount() == 1);
    assertThat(locks.inUse()).isEqualTo(1);

    first.close();
    assertThat(secondHolds.await(5, TimeUnit.SECONDS)).isTrue();
    assertThat(locks.inUse()).as("the waiter holds it now").isEqualTo(1);
    try (KeyedLocks.Held other = locks.lock(7)) {
      assertThat(locks.inUse()).isEqualTo(2);
    }
    secondMayGo.countDown();
    second.get(5, TimeUnit.SECONDS);
    assertThat(locks.inUse()).isZero();
  }
}
