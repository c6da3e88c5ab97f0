package dev.stasis.metrics;

import dev.stasis.api.CheckpointStatus;
import dev.stasis.api.MigrationStatus;
import dev.stasis.api.RestoreStatus;
import dev.stasis.storage.ObjectUpload;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.InputStream;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * What Stasis measures, in one place: the reconcilers and workers call one method each where a
 * job ends or an upload starts. Meters go to Micrometer's global registry, which a
 * {@link MetricsServer} exposes for Prometheus; the names are listed in the README.
 */
public final class StasisMetrics {
  private static final MeterRegistry REGISTRY = Metrics.globalRegistry;
  private static final Map<List<String>, AtomicLong> GAUGES = new ConcurrentHashMap<>();
  private static final Map<List<String>, Set<InFlight>> IN_FLIGHT = new ConcurrentHashMap<>();
  private static final double MIB = 1024 * 1024;

  private StasisMetrics() {}

  /** A registry Prometheus can scrape, fed by every meter of this process (JOSDK's too). */
  static PrometheusMeterRegistry prometheus() {
    PrometheusMeterRegistry prometheus = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    Metrics.addRegistry(prometheus);
    return prometheus;
  }

  static void detach(PrometheusMeterRegistry prometheus) {
    Metrics.removeRegistry(prometheus);
    prometheus.close();
  }

  public static MeterRegistry registry() {
    return REGISTRY;
  }

  /** A Checkpoint reached Completed or Failed (by its agent, or refused by the operator). */
  public static void checkpointFinished(CheckpointStatus status) {
    String node = orEmpty(status.node);
    String result = String.valueOf(status.phase);
    Counter.builder("stasis.checkpoints").description("Checkpoints finished, by result and reason")
        .tags("node", node, "result", result, "reason", orEmpty(status.reason)).register(REGISTRY).increment();
    Duration took = status.stats != null && status.stats.totalTimeMillis != null
        ? Duration.ofMillis(status.stats.totalTimeMillis)
        : between(status.startTime, status.completionTime);
    if (took != null) {
      Timer.builder("stasis.checkpoint.duration").description("Time from the agent taking a checkpoint to its end")
          .tags("node", node, "result", result)
          .serviceLevelObjectives(seconds(1), seconds(5), seconds(10), seconds(30), seconds(60), seconds(120),
              seconds(300), seconds(600), seconds(1800))
          .register(REGISTRY).record(took);
    }
    if (status.archive != null && status.archive.sizeBytes != null) {
      bytes("stasis.archive.size", "Bytes of CRIU images in an archive, before compression", node)
          .record(status.archive.sizeBytes);
      bytes("stasis.archive.stored", "Bytes an archive takes in storage", node).record(status.archive.storedBytes);
    }
    if (status.stats != null && status.stats.frozenTimeMicros != null) {
      Timer.builder("stasis.criu.frozen.time").description("How long CRIU kept the workload frozen")
          .tags("node", node)
          .serviceLevelObjectives(Duration.ofMillis(10), Duration.ofMillis(50), Duration.ofMillis(100),
              Duration.ofMillis(250), Duration.ofMillis(500), seconds(1), seconds(2), seconds(5), seconds(10),
              seconds(30), seconds(60))
          .register(REGISTRY).record(Duration.ofNanos(status.stats.frozenTimeMicros * 1000));
    }
  }

  /** A Restore reached Completed or Failed (by its agent, or refused by the operator). */
  public static void restoreFinished(RestoreStatus status) {
    String node = orEmpty(status.node);
    String result = String.valueOf(status.phase);
    Counter.builder("stasis.restores").description("Restores finished, by result and reason")
        .tags("node", node, "result", result, "reason", orEmpty(status.reason)).register(REGISTRY).increment();
    Duration took = between(status.startTime, status.completionTime);
    if (took != null) {
      Timer.builder("stasis.restore.duration").description("Time from the agent taking a restore to its end")
          .tags("node", node, "result", result)
          .serviceLevelObjectives(seconds(1), seconds(5), seconds(10), seconds(30), seconds(60), seconds(120),
              seconds(300), seconds(600))
          .register(REGISTRY).record(took);
    }
  }

  /**
   * A Migration reached Completed or Failed: counted by result, reason and what became of the
   * workload (recovery, empty when it moved); how long the workload did no work, when it runs again.
   */
  public static void migrationFinished(MigrationStatus status) {
    String result = String.valueOf(status.phase);
    migrations(result, orEmpty(status.reason), status.recovery == null ? "" : status.recovery.name()).increment();
    if (status.frozenToRunningSeconds != null) {
      migrationFrozenToRunning(result).record(Duration.ofSeconds(status.frozenToRunningSeconds));
    }
  }

  /**
   * A failover after a lost node ended: by result (Completed, Failed) and reason; for one that
   * restored the target, how long it was down, from the lost node's last heartbeat to running again.
   */
  public static void failoverFinished(String result, String reason, Duration down) {
    failovers(orEmpty(result), orEmpty(reason)).increment();
    if (down != null) {
      failoverDownTime().record(down);
    }
  }

  /**
   * The operator's meters of migrations and failovers that went well, at 0 from its start: the
   * first one is then an increase to Prometheus' rate() (a series that appears at 1 shows none),
   * and a dashboard shows 0 rather than no data until then.
   */
  public static void migrationsAndFailoversFromZero() {
    migrations("Completed", "Migrated", ""); // as MigrationLifecycle.complete ends one
    migrationFrozenToRunning("Completed");
    failovers("Completed", "Restored"); // as NodeLossFailover ends one that restored its target
    failoverDownTime();
  }

  private static Counter migrations(String result, String reason, String recovery) {
    return Counter.builder("stasis.migrations").description("Migrations finished, by result, reason and recovery")
        .tags("result", result, "reason", reason, "recovery", recovery).register(REGISTRY);
  }

  private static Timer migrationFrozenToRunning(String result) {
    return Timer.builder("stasis.migration.frozen.to.running").description(
            "From a migration's checkpoint freezing the workload to the workload running again")
        .tags("result", result)
        .serviceLevelObjectives(seconds(1), seconds(5), seconds(10), seconds(30), seconds(60), seconds(120),
            seconds(300), seconds(600), seconds(1800))
        .register(REGISTRY);
  }

  private static Counter failovers(String result, String reason) {
    return Counter.builder("stasis.failovers").description("Failovers after a lost node, by result and reason")
        .tags("result", result, "reason", reason).register(REGISTRY);
  }

  private static Timer failoverDownTime() {
    return Timer.builder("stasis.failover.down.time").description(
            "From a lost node's last heartbeat to its target running again elsewhere")
        .serviceLevelObjectives(seconds(30), seconds(60), seconds(120), seconds(300), seconds(600), seconds(1800))
        .register(REGISTRY);
  }

  /** Work assigned to a node's agent and not finished yet, counted whenever Prometheus asks. */
  public static void queueDepth(String node, String kind, Supplier<Number> depth) {
    Gauge.builder("stasis.queue.depth", depth).description("Work assigned to a node's agent and not finished")
        .tags("node", node, "kind", kind).strongReference(true).register(REGISTRY);
  }

  /** A node's work slots (the agent's --max-concurrent): jobs running, waiting, and the most that ever ran at once. */
  public static void nodeWork(String node, Supplier<Number> running, Supplier<Number> waiting,
      Supplier<Number> mostRunning) {
    Gauge.builder("stasis.node.work.running", running).description("Checkpoints and restores running on a node now")
        .tags("node", node).strongReference(true).register(REGISTRY);
    Gauge.builder("stasis.node.work.waiting", waiting).description("Checkpoints and restores waiting for a node's slot")
        .tags("node", node).strongReference(true).register(REGISTRY);
    Gauge.builder("stasis.node.work.running.max", mostRunning)
        .description("The most checkpoints and restores that ran at once on a node since its agent started")
        .tags("node", node).strongReference(true).register(REGISTRY);
  }

  /** The bytes of one checkpoint's or restore's attempt while it runs, which its node's gauges add up. */
  public interface InFlight {
    long bytesDone();

    long bytesExpected();
  }

  /**
   * Work of {@code kind} (checkpoint, restore) started moving bytes on {@code node}: the node's
   * gauges count its bytes done and expected until the returned action is run, when it ended. The
   * ratio of the two is how far the node's running work has come; labels stay node and kind.
   */
  public static Runnable inFlight(String node, String kind, InFlight work) {
    Set<InFlight> running = IN_FLIGHT.computeIfAbsent(List.of(node, kind), key -> {
      Set<InFlight> works = ConcurrentHashMap.newKeySet();
      Gauge.builder("stasis.work.done.bytes", works, w -> w.stream().mapToLong(InFlight::bytesDone).sum())
          .description("Bytes done so far by the checkpoints or restores running on a node")
          .tags("node", node, "kind", kind).strongReference(true).register(REGISTRY);
      Gauge.builder("stasis.work.expected.bytes", works, w -> w.stream().mapToLong(InFlight::bytesExpected).sum())
          .description("Bytes the checkpoints or restores running on a node are expected to move")
          .tags("node", node, "kind", kind).strongReference(true).register(REGISTRY);
      return works;
    });
    running.add(work);
    return () -> running.remove(work);
  }

  /** Bytes a checkpoint or restore moved in a step (Dumping, Uploading, Downloading, Pushing). */
  public static void workBytesMoved(String node, String kind, String step, long bytes) {
    Counter.builder("stasis.work.moved").baseUnit("bytes")
        .description("Bytes checkpoints and restores moved, by node, kind and step")
        .tags("node", node, "kind", kind, "step", step).register(REGISTRY).increment(bytes);
  }

  /** A waiting checkpoint's or restore's status was told its new place in line. */
  public static void placeInLineWritten(String node) {
    Counter.builder("stasis.node.work.place.updates").description("Status writes of a place in a node's line")
        .tags("node", node).register(REGISTRY).increment();
  }

  /** The operator's latest check of a storage: 1 when objects could be written, read and deleted. */
  public static void storageChecked(String storage, boolean available) {
    gauge("stasis.storage.available", "1 while the storage's last check passed, else 0", available ? 1 : 0,
        "storage", storage);
  }

  /** Counts what goes through the upload and records its throughput when it is committed. */
  public static ObjectUpload meteredUpload(String node, ObjectUpload upload) {
    return new MeteredUpload(upload, (bytes, nanos) -> transferred("upload", node, bytes, nanos));
  }

  /** Counts what is read from a download and records its throughput once it was read to the end. */
  public static InputStream meteredDownload(String node, InputStream in) {
    return new MeteredInputStream(in, (bytes, nanos) -> transferred("download", node, bytes, nanos));
  }

  /**
   * Counts the chunk objects of a deduplicated checkpoint (and its chunk index) stored or fetched:
   * many small objects in parallel, so they count in the bytes but not in one archive's throughput.
   */
  public static void chunksUploaded(String node, long bytes) {
    transferred("upload", node, bytes, 0);
  }

  /** @see #chunksUploaded */
  public static void chunksDownloaded(String node, long bytes) {
    transferred("download", node, bytes, 0);
  }

  private static void transferred(String direction, String node, long bytes, long nanos) {
    Counter.builder("stasis." + direction).baseUnit("bytes").description("Bytes transferred to or from storage")
        .tags("node", node).register(REGISTRY).increment(bytes);
    if (nanos > 0) {
      DistributionSummary.builder("stasis." + direction + ".throughput").baseUnit("bytes.per.second")
          .description("Throughput of one archive " + direction)
          .tags("node", node)
          .serviceLevelObjectives(MIB, 10 * MIB, 50 * MIB, 100 * MIB, 250 * MIB, 500 * MIB, 1000 * MIB, 2000 * MIB)
          .register(REGISTRY).record(bytes * 1e9 / nanos);
    }
  }

  private static DistributionSummary bytes(String name, String description, String node) {
    return DistributionSummary.builder(name).baseUnit("bytes").description(description).tags("node", node)
        .serviceLevelObjectives(MIB, 10 * MIB, 100 * MIB, 1024 * MIB, 10240 * MIB, 102400 * MIB)
        .register(REGISTRY);
  }

  private static void gauge(String name, String description, long value, String... tags) {
    List<String> key = new java.util.ArrayList<>(List.of(tags));
    key.add(0, name);
    GAUGES.computeIfAbsent(key, k -> {
      AtomicLong holder = new AtomicLong();
      Gauge.builder(name, holder, AtomicLong::get).description(description).tags(tags).register(REGISTRY);
      return holder;
    }).set(value);
  }

  private static Duration between(String start, String end) {
    try {
      return start == null || end == null ? null : Duration.between(Instant.parse(start), Instant.parse(end));
    } catch (DateTimeParseException e) {
      return null;
    }
  }

  private static Duration seconds(long s) {
    return Duration.ofSeconds(s);
  }

  private static String orEmpty(String s) {
    return s == null ? "" : s;
  }
}
