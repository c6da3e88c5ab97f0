package dev.stasis.agent.checkpoint;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class WorkingFolderLocksTest {
  private static final long SELF = ProcessHandle.current().pid();

  @Test
  void aSecondDumpInTheSameWorkingFolderWaitsForTheFirst() throws Exception {
    WorkingFolderLocks locks = new WorkingFolderLocks();
    var first = locks.lock(List.of(SELF));
    CompletableFuture<Void> second = CompletableFuture.runAsync(() -> locks.lock(List.of(SELF)).close());
    await("the second waits while the folder is held").during(Duration.ofMillis(300)).atMost(Duration.ofSeconds(2))
        .until(() -> !second.isDone());
    first.close();
    second.get(5, TimeUnit.SECONDS);
    assertThat(locks.inUse()).as("no lock kept for a folder nobody dumps in").isZero();
  }

  @Test
  void processesThatAreGoneHoldNothing() throws Exception {
    WorkingFolderLocks locks = new WorkingFolderLocks();
    try (var gone = locks.lock(List.of(Long.MAX_VALUE))) {
      assertThat(locks.inUse()).as("no folder to lock for a process that is gone").isZero();
      CompletableFuture.runAsync(() -> locks.lock(List.of(SELF)).close()).get(5, TimeUnit.SECONDS);
    }
  }
}
