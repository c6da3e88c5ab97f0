package dev.stasis.e2e;

import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.ProgressStatus;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.MetricsEndpoint;
import dev.stasis.testing.ProgressSeen;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.client.Watch;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A checkpoint of 1 GiB of memory over a slowed link to S3, and its restore over the same link:
 * what {@code kubectl get ckpt -w} shows. Watched on the API server, the PROGRESS of each moves
 * forward at least three times, with at most one status write per two seconds of the agent's
 * work; it ends at 100%. While the bytes move, the node's metrics show them done and expected.
 */
class ProgressIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  private static final int MIB = 1024;
  private static final long GIB = 1L << 30;
  private static final Pattern PERCENT = Pattern.compile("\\b[0-9]{1,3}%");
  /** 1 GiB of memory that does not compress takes ~10 s each way at this rate: about five progress writes. */
  private static final long LINK_BYTES_PER_SECOND = 100L << 20;

  @Test
  void aLargeCheckpointAndItsRestoreShowTheirProgressMoving() throws Exception {
    try (FaultInjectingProxy link = FaultInjectingProxy.to(cluster.s3().endpoint())) {
      String storage = "slow-" + cluster.node();
      cluster.createS3Storage(storage, link.endpoint(), "checkpoints");
      await().atMost(TIMEOUT).until(() -> cluster.available(storage));
      link.slow(r -> r.isUpload() || r.isDownload(), Duration.ZERO, LINK_BYTES_PER_SECOND);
      Path out = cluster.dir().resolve("progress-" + cluster.namespace() + ".txt");
      var memhog = cluster.track(Workloads.startInPidNamespace("memhog", Integer.toString(MIB), "0", out.toString()));
      await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 1); // its memory is written

      ProgressSeen checkpointSeen = new ProgressSeen();
      Checkpoint done;
      List<String> shown;
      try (Watch watch = cluster.client().resources(Checkpoint.class).inNamespace(cluster.namespace()).withName("big")
          .watch(checkpointSeen.watcher())) {
        cluster.createCheckpoint("big", memhog.pid(), storage, null);
        try (Kubectl.Watching kubectlWatch = new Kubectl(TestControlPlane.kubeconfig())
            .watch("get", "ckpt", "big", "-n", cluster.namespace(), "-w")) {
          await().atMost(TIMEOUT).until(() -> inFlight("checkpoint", "stasis_work_done_bytes") > 0);
          assertThat(inFlight("checkpoint", "stasis_work_expected_bytes")).as("the tree's memory, before the dump")
              .isGreaterThanOrEqualTo(GIB);
          // A namespace's first deduplicated checkpoint of 1 GiB stores 8,192 chunks: minutes on a busy machine.
          await().atMost(TIMEOUT.multipliedBy(4)).until(() -> cluster.checkpoint("big").getStatus().phaseOrPending()
              .isTerminal());
          done = cluster.awaitCheckpoint(cluster.checkpoint("big"), CheckpointPhase.Completed);
          await().atMost(TIMEOUT).until(() -> kubectlWatch.lines().stream().anyMatch(l -> l.contains("Completed")));
          shown = kubectlWatch.lines();
        }
      }
      checkpointSeen.assertMovedForward(done.getStatus(), GIB);
      System.out.println("kubectl get ckpt -w:\n" + String.join("\n", shown));
      assertThat(shown.get(0)).as("the header").containsSubsequence("NAME", "TARGET", "NODE", "PHASE", "PROGRESS",
          "STORED", "AGE");
      assertThat(shown.stream().map(ProgressIT::percentShown).filter(p -> !p.isEmpty()).distinct())
          .as("kubectl get ckpt -w shows it advancing").hasSizeGreaterThanOrEqualTo(4).endsWith("100%");
      assertThat(done.getStatus().progress.step).isEqualTo(ProgressStatus.UPLOADING);
      assertThat(inFlight("checkpoint", "stasis_work_done_bytes")).as("nothing in flight any more").isZero();
      assertThat(moved("checkpoint", ProgressStatus.DUMPING) + moved("checkpoint", ProgressStatus.UPLOADING))
          .isGreaterThanOrEqualTo((double) GIB);
      memhog.close();

      ProgressSeen restoreSeen = new ProgressSeen();
      Restore restored;
      try (Watch watch = cluster.client().resources(Restore.class).inNamespace(cluster.namespace()).withName("big")
          .watch(restoreSeen.watcher())) {
        cluster.createRestore("big", "big");
        await().atMost(TIMEOUT.multipliedBy(4)).until(() -> cluster.restore("big").getStatus() != null
            && cluster.restore("big").getStatus().phaseOrPending().isTerminal());
        restored = cluster.awaitRestore(cluster.restore("big"), RestorePhase.Completed);
      }
      int pid = restored.getStatus().restoredPid;
      cluster.afterTest(() -> Workloads.kill(pid));
      restoreSeen.assertMovedForward(restored.getStatus(), GIB);
      assertThat(restoreSeen.progresses()).extracting(p -> p.step).contains(ProgressStatus.DOWNLOADING);
      assertThat(moved("restore", ProgressStatus.DOWNLOADING)).isGreaterThanOrEqualTo((double) GIB);
    }
  }

  /** The PROGRESS column of a line of {@code kubectl get ckpt}: the only one with a percent sign; else "". */
  private static String percentShown(String line) {
    Matcher percent = PERCENT.matcher(line);
    return percent.find() ? percent.group() : "";
  }

  private static double inFlight(String kind, String gauge) throws Exception {
    String metrics = MetricsEndpoint.get(cluster.metricsPort(), "/metrics").body();
    return MetricsEndpoint.value(metrics, gauge, "node=\"" + cluster.node() + "\"", "kind=\"" + kind + "\"").orElse(0.0);
  }

  private static double moved(String kind, String step) throws Exception {
    String metrics = MetricsEndpoint.get(cluster.metricsPort(), "/metrics").body();
    return MetricsEndpoint.value(metrics, "stasis_work_moved_bytes_total", "node=\"" + cluster.node() + "\"",
        "kind=\"" + kind + "\"", "step=\"" + step + "\"").orElse(0.0);
  }
}
