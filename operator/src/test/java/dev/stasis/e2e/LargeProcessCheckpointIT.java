package dev.stasis.e2e;

import dev.stasis.testing.InProcessCluster;
import org.junit.jupiter.api.extension.RegisterExtension;
import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.testing.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * A process with more memory than one archive chunk: its pages are stored in many parts (16 MiB
 * archive chunks, uploaded while CRIU still writes them when the workload ends after its checkpoint
 * and once CRIU is done when it keeps running, as here; or, deduplicated, 128 KiB chunks), and the
 * restored process finds every byte of its memory where it left it.
 */
class LargeProcessCheckpointIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  private static final int MIB = 80; // five 16 MiB chunks

  @Test
  void memoryIsIntactAfterAStreamedCheckpointAndRestore() throws Exception {
    Path out = cluster.dir().resolve("memhog-" + cluster.namespace() + ".txt");
    var memhog = cluster.track(Workloads.startInPidNamespace("memhog", Integer.toString(MIB), "0", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 1);

    Checkpoint done = cluster.awaitCheckpoint(cluster.createCheckpoint("memhog", memhog.pid(), cluster.s3Storage(), null),
        CheckpointPhase.Completed);
    assertThat(done.getStatus().archive.newBytes).as("random memory does not compress, and none was stored before")
        .isGreaterThan((long) MIB << 20);
    memhog.close();
    long killedAt = Workloads.count(out);

    Restore restored = cluster.awaitRestore(cluster.createRestore("memhog", "memhog"), RestorePhase.Completed);
    int pid = restored.getStatus().restoredPid;
    cluster.afterTest(() -> Workloads.kill(pid));
    // memhog checks one page of its memory against the pattern on every count and writes
    // CORRUPT instead of a count if it differs.
    await().atMost(TIMEOUT).until(() -> Files.readString(out).startsWith("CORRUPT")
        || Workloads.count(out) > 0 && Workloads.count(out) < killedAt && Workloads.isAlive(pid));
    assertThat(Files.readString(out)).doesNotStartWith("CORRUPT");
    long resumed = Workloads.count(out);
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) > resumed + 20 || Files.readString(out).startsWith("CORRUPT"));
    assertThat(Files.readString(out)).doesNotStartWith("CORRUPT");
  }
}
