package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The note a dump or restore leaves in its work folder tells the next agent whether that CRIU still
 * runs: not once it ended (even as an unreaped zombie), nor when its PID went to another process.
 */
class CriuRunningNoteTest {
  @TempDir Path work;

  @Test
  void aRunningProcessIsSeenUntilItEnds() throws Exception {
    Process sleeper = new ProcessBuilder("sleep", "30").start();
    try {
      note(sleeper.pid(), sleeper.info().startInstant().orElseThrow());
      assertThat(Criu.stillRunningIn(work)).map(ProcessHandle::pid).hasValue(sleeper.pid());
    } finally {
      sleeper.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }
    assertThat(Criu.stillRunningIn(work)).isEmpty();
  }

  @Test
  void aPidTakenByAnotherProcessIsNotTheNotedOne() throws Exception {
    note(ProcessHandle.current().pid(), Instant.EPOCH);
    assertThat(Criu.stillRunningIn(work)).isEmpty();
  }

  @Test
  void anEndedButUnreapedProcessIsNotRunning() throws Exception {
    // The shell's child ends after the shell became sleep, which never reaps it. (A child that ended
    // at once was sometimes reaped by the shell before its exec: no zombie, no /proc entry.)
    Process parent = new ProcessBuilder("sh", "-c", "sleep 1 & echo $!; exec sleep 30").start();
    try {
      long child = Long.parseLong(parent.inputReader().readLine().trim());
      Path stat = Path.of("/proc", Long.toString(child), "stat");
      await().atMost(Duration.ofSeconds(10)).until(() -> Files.readString(stat).contains(") Z "));
      ProcessHandle zombie = ProcessHandle.of(child).orElseThrow();
      note(child, zombie.info().startInstant().orElseThrow());
      assertThat(Criu.stillRunningIn(work)).isEmpty();
    } finally {
      parent.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void noNoteMeansNothingToWaitFor() {
    assertThat(Criu.stillRunningIn(work)).isEmpty();
  }

  private void note(long pid, Instant started) throws Exception {
    Files.writeString(work.resolve(Criu.RUNNING_FILE), pid + " " + started.toEpochMilli() + "\n");
  }
}
