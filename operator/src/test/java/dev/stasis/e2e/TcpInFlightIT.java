package dev.stasis.e2e;

import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.Workloads;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * leaveRunning: false with established TCP connections: CRIU itself ends the tree, under its
 * network lock, once the archive is stored and recorded, so no connection is touched between the
 * dump and the restore. The workload (src/test/workloads/tcpstream.c) keeps data in flight both
 * ways and checks every byte it receives; it is checkpointed and restored again and again.
 */
class TcpInFlightIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  /** bench/jobs.sh does a hundred, without the API server in between. */
  static final int CYCLES = 5;

  @Test
  void aTcpPairWithDataInFlightBothWaysLosesNothingRestoreAfterRestore() throws Exception {
    Path status = cluster.dir().resolve("tcp-" + cluster.namespace() + ".status");
    long pid = cluster.track(Workloads.startInPidNamespace("tcpstream", status.toString())).pid();
    await().atMost(TIMEOUT).until(() -> verified(status)[0] > 0 && verified(status)[1] > 0);

    for (int cycle = 1; cycle <= CYCLES; cycle++) {
      String name = "tcp-" + cycle;
      var options = new CheckpointOptions();
      options.leaveRunning = false;
      options.tcpEstablished = true;
      cluster.awaitCheckpoint(cluster.createCheckpoint(name, pid, cluster.fsStorage(), options), CheckpointPhase.Completed);
      long ended = pid;
      await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(ended));
      long[] atCheckpoint = verified(status);

      Restore restored = cluster.awaitRestore(cluster.createRestore(name, name), RestorePhase.Completed);
      pid = restored.getStatus().restoredPid;
      long running = pid;
      cluster.afterTest(() -> Workloads.kill(running));
      // Both ends go on receiving, every byte the one the other sent next: "lost"/"broken" otherwise.
      await("cycle " + cycle).atMost(TIMEOUT).until(() -> {
        long[] now = verified(status);
        return now[0] > atCheckpoint[0] && now[1] > atCheckpoint[1];
      });
    }
  }

  /**
   * Bytes the server and the client verified so far, from the status line the server writes;
   * fails the test at once on "lost" or "broken".
   */
  static long[] verified(Path status) throws IOException {
    for (int attempt = 0; attempt < 50; attempt++) {
      String line = Files.exists(status) ? Files.readString(status).strip() : "";
      if (line.startsWith("ok ")) {
        String[] fields = line.split(" ");
        return new long[] {Long.parseLong(fields[1]), Long.parseLong(fields[2])};
      }
      assertThat(line).as("the pair's own check of every byte").doesNotStartWith("lost").doesNotStartWith("broken");
      try {
        Thread.sleep(20); // caught mid-rewrite, or not written yet
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    return new long[] {0, 0};
  }
}
