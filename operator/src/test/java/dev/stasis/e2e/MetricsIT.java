package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.RestorePhase;
import dev.stasis.testing.Workloads;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * What Prometheus scrapes from /metrics after a real checkpoint and restore, and what the kubelet's
 * probes get from /healthz and /readyz.
 */
class MetricsIT extends EndToEndTest {
  static final HttpClient HTTP = HttpClient.newHttpClient();

  @Test
  void healthAndReadinessAnswerOnTheMetricsPort() throws Exception {
    assertThat(get("/healthz")).isEqualTo(new Answer(200, "ok\n"));
    await().atMost(TIMEOUT).until(() -> get("/readyz").status() == 200);
    assertThat(get("/nothing-here").status()).isEqualTo(404);
  }

  @Test
  void aCheckpointAndARestoreShowInTheMetrics() throws Exception {
    Path out = shared.resolve("metrics-count.txt");
    var counter = track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> count(out) >= 2);
    var done = awaitCheckpoint(createCheckpoint("measured", counter.pid(), s3Storage, null), CheckpointPhase.Completed);
    awaitCheckpoint(createCheckpoint("refused", "no-such-node", 4242, s3Storage, null), CheckpointPhase.Failed);
    counter.close();
    var restored = awaitRestore(createRestore("measured", "measured"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));

    String node = "node=\"" + NODE + "\"";
    // The agent records a finished job just after writing its status, and counts its queue from its
    // informer's copy: on a busy machine a scrape can come between.
    String metrics = await().atMost(TIMEOUT).until(() -> get("/metrics").body(),
        m -> value(m, "stasis_restores_total", node).isPresent()
            && value(m, "stasis_queue_depth", node, "kind=\"restore\"").equals(Optional.of(0.0)));
    assertThat(value(metrics, "stasis_checkpoints_total", node, "result=\"Completed\"")).hasValueSatisfying(atLeast(1));
    assertThat(value(metrics, "stasis_checkpoints_total", "reason=\"NodeNotFound\"", "result=\"Failed\""))
        .as("refused by the operator").hasValueSatisfying(atLeast(1));
    assertThat(value(metrics, "stasis_restores_total", node, "result=\"Completed\"")).hasValueSatisfying(atLeast(1));
    assertThat(value(metrics, "stasis_checkpoint_duration_seconds_count", node, "result=\"Completed\""))
        .hasValueSatisfying(atLeast(1));
    assertThat(value(metrics, "stasis_checkpoint_duration_seconds_bucket", node, "le=\"+Inf\"")).isPresent();
    assertThat(value(metrics, "stasis_restore_duration_seconds_count", node)).hasValueSatisfying(atLeast(1));
    assertThat(value(metrics, "stasis_archive_size_bytes_sum", node))
        .hasValueSatisfying(atLeast((double) done.getStatus().archive.sizeBytes));
    assertThat(value(metrics, "stasis_archive_stored_bytes_sum", node))
        .hasValueSatisfying(atLeast((double) done.getStatus().archive.storedBytes));
    assertThat(value(metrics, "stasis_criu_frozen_time_seconds_count", node)).hasValueSatisfying(atLeast(1));
    assertThat(value(metrics, "stasis_upload_bytes_total", node))
        .hasValueSatisfying(atLeast((double) done.getStatus().archive.storedBytes));
    assertThat(value(metrics, "stasis_upload_throughput_bytes_per_second_count", node)).hasValueSatisfying(atLeast(1));
    assertThat(value(metrics, "stasis_download_bytes_total", node))
        .hasValueSatisfying(atLeast((double) done.getStatus().archive.storedBytes));
    assertThat(value(metrics, "stasis_download_throughput_bytes_per_second_count", node))
        .hasValueSatisfying(atLeast(1));
    assertThat(value(metrics, "stasis_storage_available", "storage=\"" + s3Storage + "\"")).hasValue(1.0);
    assertThat(value(metrics, "stasis_queue_depth", node, "kind=\"checkpoint\"")).hasValue(0.0);
    assertThat(value(metrics, "stasis_queue_depth", node, "kind=\"restore\"")).hasValue(0.0);
    // JOSDK's own controller metrics: by kind, and by controller.
    assertThat(value(metrics, "operator_sdk_reconciliations_started_total", "kind=\"Checkpoint\""))
        .hasValueSatisfying(atLeast(2));
    assertThat(value(metrics, "operator_sdk_controllers_execution_reconcile_success_total",
        "controller=\"node-checkpoint-" + NODE + "\"")).hasValueSatisfying(atLeast(1));
  }

  static Consumer<Double> atLeast(double min) {
    return v -> assertThat(v).isGreaterThanOrEqualTo(min);
  }

  /** The sum over every series of {@code name} whose labels contain all of {@code labels}. */
  static Optional<Double> value(String metrics, String name, String... labels) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "\\{([^}]*)\\} (\\S+)$").matcher(metrics);
    Double sum = null;
    while (m.find()) {
      String found = m.group(1);
      boolean all = true;
      for (String label : labels) {
        all &= found.contains(label);
      }
      if (all) {
        sum = (sum == null ? 0 : sum) + Double.parseDouble(m.group(2));
      }
    }
    return Optional.ofNullable(sum);
  }

  Answer get(String path) throws Exception {
    return get(stasis.metricsPort(), path);
  }

  static Answer get(int port, String path) throws Exception {
    HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build(),
        HttpResponse.BodyHandlers.ofString());
    return new Answer(response.statusCode(), response.body());
  }

  record Answer(int status, String body) {}
}
