package dev.stasis.agent.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Process identities and signals through pidfds, on processes this test starts (and ends, by PID). */
class NodeProcessTest {
  private Process sleeper;

  @AfterEach
  void end() throws InterruptedException {
    if (sleeper != null) {
      sleeper.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void aSignalReachesTheProcessItNamesAndNoOther() throws Exception {
    sleeper = new ProcessBuilder("sleep", "600").start();
    NodeProcess process = NodeProcess.find(sleeper.pid()).orElseThrow();
    NodeProcess startedBefore = new NodeProcess(process.pid(), process.startTicks() - 1, process.bootId());
    NodeProcess ofAnotherBoot = new NodeProcess(process.pid(), process.startTicks(), "another-boot");

    assertThat(startedBefore.isRunning()).isFalse();
    assertThat(startedBefore.signal(NodeProcess.Signal.KILL)).as("the PID names another process").isFalse();
    assertThat(ofAnotherBoot.signal(NodeProcess.Signal.KILL)).as("the node has rebooted since").isFalse();
    await().during(Duration.ofMillis(500)).atMost(Duration.ofSeconds(2)).until(sleeper::isAlive);

    assertThat(process.isRunning()).isTrue();
    assertThat(process.signal(NodeProcess.Signal.KILL)).isTrue();
    assertThat(sleeper.waitFor(5, TimeUnit.SECONDS)).isTrue();
    assertThat(process.isRunning()).isFalse();
    assertThat(process.signal(NodeProcess.Signal.KILL)).as("it has ended").isFalse();
  }

  @Test
  void anIdentityIsRecordedWithItsStartTime() throws Exception {
    sleeper = new ProcessBuilder("sleep", "600").start();
    NodeProcess process = NodeProcess.find(sleeper.pid()).orElseThrow();

    var recorded = process.toStatus();
    assertThat(NodeProcess.of(recorded)).isEqualTo(process);
    assertThat(recorded.sameProcessAs(NodeProcess.find(sleeper.pid()).orElseThrow().toStatus())).isTrue();
    assertThat(Instant.parse(recorded.startTime)).isBetween(Instant.now().minusSeconds(60), Instant.now().plusSeconds(2));
    assertThat(recorded.bootId).isNotBlank();
  }

  @Test
  void noProcessHasAPidNoOneHas() {
    assertThat(NodeProcess.find(Integer.MAX_VALUE)).isEmpty();
  }
}
