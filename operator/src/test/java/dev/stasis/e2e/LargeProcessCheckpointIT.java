package dev.stasis.e2e;

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
 * A process with more memory than one archive chunk: its pages are uploaded while CRIU still
 * writes them, and the restored process finds every byte of its memory where it left it.
 */
class LargeProcessCheckpointIT extends EndToEndTest {
  private static final int MIB = 80; // five 16 MiB chunks

  @Test
  void memoryIsIntactAfterAStreamedCheckpointAndRestore() throws Exception {
    Path out = shared.resolve("memhog-" + namespace + ".txt");
    var memhog = track(Workloads.startInPidNamespace("memhog", Integer.toString(MIB), "0", out.toString()));
    await().atMost(TIMEOUT).until(() -> count(out) >= 1);

    Checkpoint done = awaitCheckpoint(createCheckpoint("memhog", memhog.pid(), s3Storage, null),
        CheckpointPhase.Completed);
    assertThat(done.getStatus().archive.storedBytes).as("random memory does not compress")
        .isGreaterThan((long) MIB << 20);
    memhog.close();
    long killedAt = count(out);

    Restore restored = awaitRestore(createRestore("memhog", "memhog"), RestorePhase.Completed);
    int pid = restored.getStatus().restoredPid;
    cleanup.add(() -> Workloads.kill(pid));
    // memhog checks one page of its memory against the pattern on every count and writes
    // CORRUPT instead of a count if it differs.
    await().atMost(TIMEOUT).until(() -> Files.readString(out).startsWith("CORRUPT")
        || count(out) > 0 && count(out) < killedAt && Workloads.isAlive(pid));
    assertThat(Files.readString(out)).doesNotStartWith("CORRUPT");
    long resumed = count(out);
    await().atMost(TIMEOUT).until(() -> count(out) > resumed + 20 || Files.readString(out).startsWith("CORRUPT"));
    assertThat(Files.readString(out)).doesNotStartWith("CORRUPT");
  }
}
