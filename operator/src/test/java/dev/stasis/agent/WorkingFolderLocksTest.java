package dev.stasis.agent;

import static org.assertj.core.api.Assertions.assertThat;

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
    Thread.sleep(200);
    assertThat(second).as("waits while the folder is held").isNotDone();
    first.close();
    second.get(5, TimeUnit.SECONDS);
    assertThat(locks.inUse()).as("no lock kept for a folder nobody dumps in").isZero();
  }

  @Test
  void processesThatAreGoneHoldNothing() throws Exception {
    WorkingFolderLocks locks = new WorkingFolderLocks();
    try (var gone = locks.lock(List.of(Long.MAX_VALUE))) {
      CompletableFuture.runAsync(() -> locks.lock(List.of(SELF)).close()).get(5, TimeUnit.SECONDS);
    }
  }
}
