package dev.stasis.e2e;

import dev.stasis.testing.InProcessCluster;
import org.junit.jupiter.api.extension.RegisterExtension;
import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.process.ProcessTargetPolicy;
import dev.stasis.api.AttemptedStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Conditions;
import dev.stasis.api.NodeProfile;
import dev.stasis.cli.Main;
import dev.stasis.criu.Criu;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.metrics.StasisMetrics;
import dev.stasis.operator.retention.StorageGarbageCollector;
import dev.stasis.storage.ObjectStore;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * The node's work queue and retries on real parts: an agent for one more node with 2 work slots
 * and a 2 s retry backoff, real CRIU, real counters, s3proxy stopped and started again.
 */
class RetriesAndNodeQueueIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  private static final int SLOTS = 2;
  private static final Duration RETRY_BASE = Duration.ofSeconds(2);
  private static final Pattern IN_LINE = Pattern.compile("(\\d+)(st|nd|rd|th) in line on node (\\S+); (\\d+) running");

  static String LIMITED;
  static InProcessStasis limitedAgent;

  @BeforeAll
  static void startLimitedAgent() {
    LIMITED = cluster.node() + "-limited";
    AgentConfig config = new AgentConfig(LIMITED, cluster.dir().resolve("work-limited"), new Criu(Main.criuPath(null), Map.of()),
        Set.of(ProcessTargetPolicy.ALL))
        .withWorkLimits(SLOTS, RetryPolicy.withBase(RETRY_BASE));
    limitedAgent = InProcessStasis.on(cluster.client()).withoutOperator().agent(config).start();
    await().atMost(TIMEOUT).until(() -> cluster.client().resources(NodeProfile.class).withName(LIMITED).get() != null);
  }

  @AfterAll
  static void stopLimitedAgent() {
    if (limitedAgent != null) limitedAgent.close();
  }

  /**
   * 50 checkpoints of 50 running processes at once on one node with 2 slots: the rest wait in line
   * and say where, the line only moves forward, never more than 2 run at once, and all complete.
   */
  @Test
  void fiftyCheckpointsOnOneNodeWaitInLineAndAllComplete() throws Exception {
    int n = 50;
    List<Workloads.Workload> counters = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      counters.add(cluster.track(Workloads.startInPidNamespace("counter", cluster.dir().resolve("queue-" + i + ".txt").toString())));
    }
    long begun = System.nanoTime();
    for (int i = 0; i < n; i++) {
      create("q" + i, LIMITED, counters.get(i).pid(), cluster.fsStorage(), null);
    }

    Map<String, List<Integer>> placesSeen = new HashMap<>();
    Set<String> messages = new HashSet<>();
    await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(200)).until(() -> {
      List<Checkpoint> all = cluster.client().resources(Checkpoint.class).inNamespace(cluster.namespace()).list().getItems();
      for (Checkpoint c : all) {
        var s = c.getStatus();
        if (s != null && s.phase == CheckpointPhase.Pending && s.queuePosition != null) {
          assertThat(s.reason).isEqualTo(AttemptedStatus.WAITING_FOR_NODE_SLOT);
          List<Integer> seen = placesSeen.computeIfAbsent(c.getMetadata().getName(), k -> new ArrayList<>());
          if (seen.isEmpty() || seen.get(seen.size() - 1) != s.queuePosition.intValue()) {
            seen.add(s.queuePosition);
          }
          messages.add(s.message);
        }
      }
      return all.size() == n && all.stream().allMatch(c -> c.getStatus() != null && c.getStatus().phase != null
          && c.getStatus().phase.isTerminal());
    });
    Duration took = Duration.ofNanos(System.nanoTime() - begun);

    for (int i = 0; i < n; i++) {
      Checkpoint c = cluster.checkpoint("q" + i);
      assertThat(c.getStatus().phase).as("q%d: %s %s", i, c.getStatus().reason, c.getStatus().message)
          .isEqualTo(CheckpointPhase.Completed);
      assertThat(c.getStatus().attempts).isEqualTo(1);
      assertThat(c.getStatus().queuePosition).as("no place in line once done").isNull();
    }
    assertThat(placesSeen.size()).as("checkpoints seen waiting with a place in line").isGreaterThan(n / 2);
    assertThat(placesSeen.values().stream().mapToInt(places -> places.get(0)).max().orElse(0))
        .as("the longest line seen").isGreaterThan(20);
    placesSeen.forEach((name, places) -> assertThat(places).as(name + ": the line only moves forward")
        .isSortedAccordingTo((a, b) -> Integer.compare(b, a)));
    for (String message : messages) {
      Matcher m = IN_LINE.matcher(message);
      assertThat(m.matches()).as(message).isTrue();
      assertThat(m.group(3)).isEqualTo(LIMITED);
      assertThat(Integer.parseInt(m.group(4))).as("slots busy while work waits").isEqualTo(SLOTS);
    }
    assertThat(gauge("stasis.node.work.running.max")).as("never more than the slots at once").isEqualTo(SLOTS);
    double placeWrites = StasisMetrics.registry().get("stasis.node.work.place.updates").tag("node", LIMITED).counter().count();
    assertThat(placeWrites).as("each move of the line written to every waiting checkpoint would be %d writes", n * (n - 1) / 2)
        .isLessThan(n * (n - 1) / 2.0);
    assertThat(gauge("stasis.node.work.running")).isZero();
    assertThat(gauge("stasis.node.work.waiting")).isZero();
    for (var counter : counters) {
      assertThat(Workloads.isAlive(counter.pid())).isTrue();
    }
    System.out.printf("50 checkpoints through %d slots took %d ms; %d of them were seen waiting; %.0f writes of"
        + " places in line%n", SLOTS, took.toMillis(), placesSeen.size(), placeWrites);
  }

  /**
   * The storage is down for the first attempt and back for the second: the checkpoint goes back
   * to Pending with the reason, an Event and the time of the retry, then completes; the process
   * counted on throughout.
   */
  @Test
  void aStorageOutageIsRetriedAndTheCheckpointCompletes() throws Exception {
    try (S3Server flaky = S3Server.start()) {
      String storage = s3StorageOn(flaky, "flaky");
      var counter = cluster.track(Workloads.startInPidNamespace("counter", cluster.dir().resolve("flaky.txt").toString()));
      flaky.pause();
      Checkpoint created = create("flaky", LIMITED, counter.pid(), storage, null);

      Checkpoint retrying = await().atMost(TIMEOUT).pollInterval(Duration.ofMillis(50))
          .until(() -> cluster.checkpoint("flaky"), c -> c.getStatus() != null && c.getStatus().nextRetryTime != null);
      flaky.resume();
      assertThat(retrying.getStatus().phase).isEqualTo(CheckpointPhase.Pending);
      assertThat(retrying.getStatus().attempts).isEqualTo(1);
      assertThat(retrying.getStatus().message).startsWith("attempt 1/4 failed (" + retrying.getStatus().reason + "): ")
          .endsWith("; retrying in 2s");
      var condition = Conditions.find(retrying.getStatus().conditions, Conditions.RETRYING);
      assertThat(condition.getStatus()).isEqualTo("True");
      assertThat(condition.getReason()).isIn(RETRIED_STORAGE_REASONS);

      Checkpoint done = cluster.awaitCheckpoint(created, CheckpointPhase.Completed);
      assertThat(done.getStatus().attempts).isEqualTo(2);
      assertThat(Conditions.find(done.getStatus().conditions, Conditions.RETRYING).getStatus()).isEqualTo("False");
      assertThat(events()).anyMatch(e -> "Retrying".equals(e.getReason()) && "Warning".equals(e.getType())
          && e.getMessage().startsWith("attempt 1/4 failed"));
      assertThat(flaky.client().listObjectsV2(b -> b.bucket("flaky")).contents())
          .anyMatch(o -> o.key().endsWith("manifest.json"));
      long count = Workloads.count(cluster.dir().resolve("flaky.txt"));
      await().atMost(Duration.ofSeconds(10)).until(() -> Workloads.count(cluster.dir().resolve("flaky.txt")) > count);
    }
  }

  /** Storage down for good, backoffLimit 1: two attempts, then Failed with the count; nothing left in the bucket. */
  @Test
  void aStorageThatStaysDownFailsAfterBackoffLimitRetriesAndKeepsNothing() throws Exception {
    try (S3Server down = S3Server.start()) {
      String storage = s3StorageOn(down, "down");
      var counter = cluster.track(Workloads.startInPidNamespace("counter", cluster.dir().resolve("down.txt").toString()));
      down.pause();
      Checkpoint failed = cluster.awaitCheckpoint(create("down", LIMITED, counter.pid(), storage, 1), CheckpointPhase.Failed);
      down.resume();

      assertThat(failed.getStatus().attempts).isEqualTo(2);
      assertThat(failed.getStatus().reason).isIn(RETRIED_STORAGE_REASONS);
      assertThat(failed.getStatus().message).startsWith("failed after 2 attempts (spec.backoffLimit 1 reached); the last: ");
      assertThat(events()).filteredOn(e -> "Retrying".equals(e.getReason())).hasSize(1);
      assertThat(events()).anyMatch(e -> failed.getStatus().reason.equals(e.getReason()) && "Warning".equals(e.getType())
          && e.getMessage().startsWith("failed after 2 attempts"));
      S3Client bucket = down.client();
      // The operator's storage check may have been cut off between writing its probe and deleting it;
      // it marks the storage as used by this cluster.
      assertThat(bucket.listObjectsV2(b -> b.bucket("down")).contents()).as("nothing stored")
          .allMatch(o -> o.key().contains(ObjectStore.CHECK_PROBE_PREFIX)
              || o.key().contains(StorageGarbageCollector.CLUSTER_MARKERS));
      assertThat(bucket.listMultipartUploads(b -> b.bucket("down")).uploads()).as("no upload left open").isEmpty();
      long count = Workloads.count(cluster.dir().resolve("down.txt"));
      await().atMost(Duration.ofSeconds(10)).until(() -> Workloads.count(cluster.dir().resolve("down.txt")) > count);
    }
  }

  /** Bad input fails at once, however many retries the spec allows. */
  @Test
  void aPidThatDoesNotExistIsNotRetried() {
    Checkpoint failed = cluster.awaitCheckpoint(create("nopid", LIMITED, Workloads.unusedPid(), cluster.fsStorage(), 5),
        CheckpointPhase.Failed);
    assertThat(failed.getStatus().reason).isEqualTo("ProcessNotFound");
    assertThat(failed.getStatus().attempts).isEqualTo(1);
    assertThat(failed.getStatus().message).doesNotContain("attempt");
    assertThat(events()).noneMatch(e -> "Retrying".equals(e.getReason()));
  }

  /** Where the agent meets the outage decides the reason: opening the storage or writing to it. */
  private static final List<String> RETRIED_STORAGE_REASONS = List.of("StorageUnavailable", "StorageFailed");

  private Checkpoint create(String name, String node, long pid, String storage, Integer backoffLimit) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(cluster.namespace()).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(node, (int) pid)));
    c.getSpec().storage = storage;
    c.getSpec().backoffLimit = backoffLimit;
    return cluster.client().resource(c).create();
  }

  /** A storage on its own S3 server, Available before the server is stopped (the operator refuses unavailable ones). */
  private String s3StorageOn(S3Server server, String bucket) {
    server.createBucket(bucket);
    String name = bucket + "-" + cluster.namespace();
    cluster.createS3Storage(name, server.endpoint(), bucket);
    await().atMost(TIMEOUT).until(() -> cluster.available(name));
    return name;
  }

  private List<Event> events() {
    return cluster.client().v1().events().inNamespace(cluster.namespace()).list().getItems();
  }

  private static double gauge(String name) {
    return StasisMetrics.registry().get(name).tag("node", LIMITED).gauge().value();
  }
}
