package dev.stasis.e2e;

import dev.stasis.testing.MetricsEndpoint;
import dev.stasis.testing.InProcessCluster;
import org.junit.jupiter.api.extension.RegisterExtension;
import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.RestorePhase;
import dev.stasis.testing.Workloads;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * What Prometheus scrapes from /metrics after a real checkpoint and restore, and what the kubelet's
 * probes get from /healthz and /readyz.
 */
class MetricsIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();


  @Test
  void healthAndReadinessAnswerOnTheMetricsPort() throws Exception {
    assertThat(get("/healthz")).isEqualTo(new MetricsEndpoint.Answer(200, "ok\n"));
    await().atMost(TIMEOUT).until(() -> get("/readyz").status() == 200);
    assertThat(get("/nothing-here").status()).isEqualTo(404);
  }

  @Test
  void aCheckpointAndARestoreShowInTheMetrics() throws Exception {
    Path out = cluster.dir().resolve("metrics-count.txt");
    var counter = cluster.track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 2);
    var done = cluster.awaitCheckpoint(cluster.createCheckpoint("measured", counter.pid(), cluster.s3Storage(), null), CheckpointPhase.Completed);
    cluster.awaitCheckpoint(cluster.createCheckpoint("refused", "no-such-node", 4242, cluster.s3Storage(), null), CheckpointPhase.Failed);
    counter.close();
    var restored = cluster.awaitRestore(cluster.createRestore("measured", "measured"), RestorePhase.Completed);
    cluster.afterTest(() -> Workloads.kill(restored.getStatus().restoredPid));

    String node = "node=\"" + cluster.node() + "\"";
    // The agent records a finished job just after writing its status, and counts its queue from its
    // informer's copy: on a busy machine a scrape can come between.
    String metrics = await().atMost(TIMEOUT).until(() -> get("/metrics").body(),
        m -> MetricsEndpoint.value(m, "stasis_restores_total", node).isPresent()
            && MetricsEndpoint.value(m, "stasis_queue_depth", node, "kind=\"restore\"").equals(Optional.of(0.0)));
    assertThat(MetricsEndpoint.value(metrics, "stasis_checkpoints_total", node, "result=\"Completed\"")).hasValueSatisfying(atLeast(1));
    assertThat(MetricsEndpoint.value(metrics, "stasis_checkpoints_total", "reason=\"NodeNotFound\"", "result=\"Failed\""))
        .as("refused by the operator").hasValueSatisfying(atLeast(1));
    assertThat(MetricsEndpoint.value(metrics, "stasis_restores_total", node, "result=\"Completed\"")).hasValueSatisfying(atLeast(1));
    assertThat(MetricsEndpoint.value(metrics, "stasis_checkpoint_duration_seconds_count", node, "result=\"Completed\""))
        .hasValueSatisfying(atLeast(1));
    assertThat(MetricsEndpoint.value(metrics, "stasis_checkpoint_duration_seconds_bucket", node, "le=\"+Inf\"")).isPresent();
    assertThat(MetricsEndpoint.value(metrics, "stasis_restore_duration_seconds_count", node)).hasValueSatisfying(atLeast(1));
    assertThat(MetricsEndpoint.value(metrics, "stasis_archive_size_bytes_sum", node))
        .hasValueSatisfying(atLeast((double) done.getStatus().archive.sizeBytes));
    assertThat(MetricsEndpoint.value(metrics, "stasis_archive_stored_bytes_sum", node))
        .hasValueSatisfying(atLeast((double) done.getStatus().archive.storedBytes));
    assertThat(MetricsEndpoint.value(metrics, "stasis_criu_frozen_time_seconds_count", node)).hasValueSatisfying(atLeast(1));
    // Everything the checkpoint added to storage went up (a deduplicated one: archive, chunk index,
    // chunks or packs and their indexes).
    assertThat(MetricsEndpoint.value(metrics, "stasis_upload_bytes_total", node))
        .hasValueSatisfying(atLeast((double) done.getStatus().archive.newBytes));
    assertThat(MetricsEndpoint.value(metrics, "stasis_upload_throughput_bytes_per_second_count", node)).hasValueSatisfying(atLeast(1));
    // At least the archive came down (a deduplicated restore fetches its chunks too, but not the pack
    // indexes its checkpoint wrote: not all of newBytes).
    assertThat(MetricsEndpoint.value(metrics, "stasis_download_bytes_total", node))
        .hasValueSatisfying(atLeast((double) done.getStatus().archive.storedBytes));
    assertThat(MetricsEndpoint.value(metrics, "stasis_download_throughput_bytes_per_second_count", node))
        .hasValueSatisfying(atLeast(1));
    assertThat(MetricsEndpoint.value(metrics, "stasis_storage_available", "storage=\"" + cluster.s3Storage() + "\"")).hasValue(1.0);
    assertThat(MetricsEndpoint.value(metrics, "stasis_queue_depth", node, "kind=\"checkpoint\"")).hasValue(0.0);
    assertThat(MetricsEndpoint.value(metrics, "stasis_queue_depth", node, "kind=\"restore\"")).hasValue(0.0);
    // JOSDK's own controller metrics: by kind, and by controller.
    assertThat(MetricsEndpoint.value(metrics, "operator_sdk_reconciliations_started_total", "kind=\"Checkpoint\""))
        .hasValueSatisfying(atLeast(2));
    assertThat(MetricsEndpoint.value(metrics, "operator_sdk_controllers_execution_reconcile_success_total",
        "controller=\"node-checkpoint-" + cluster.node() + "\"")).hasValueSatisfying(atLeast(1));
  }

  static Consumer<Double> atLeast(double min) {
    return v -> assertThat(v).isGreaterThanOrEqualTo(min);
  }


  MetricsEndpoint.Answer get(String path) throws Exception {
    return MetricsEndpoint.get(cluster.metricsPort(), path);
  }


}
