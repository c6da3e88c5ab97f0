package dev.stasis.e2e;

import static dev.stasis.testing.InProcessCluster.TIMEOUT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointScheduleSpec.ConcurrencyPolicy;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.kube.Labels;
import dev.stasis.testing.InProcessCluster;
import dev.stasis.testing.TestStorage;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Issue 18's "done when", on real parts (CRIU, s3proxy, the API server, operator and agent): a
 * CheckpointSchedule keeping the last 5 checkpoints of a counting process with {@link #MEMORY_MIB}
 * of incompressible memory, 5% of it rewritten between runs, stores little more than one copy
 * once the storage's collection has run, and every checkpoint it keeps restores with exactly the
 * memory it was taken with and counts on. Asserted as a user sees it (the storage's usage, the
 * restored process), so it holds whatever the chunks are stored in.
 */
class DeduplicatedScheduleIT {
  @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();

  /**
   * The process's memory. The case is 1 GiB ({@code -Dstasis.schedule.mib=1024}: about 10
   * minutes on a busy 2-core machine); {@code make test} runs a quarter of it, for the same ratios.
   */
  static final int MEMORY_MIB = Integer.getInteger("stasis.schedule.mib", 256);
  static final int REWRITE_MIB = MEMORY_MIB * 5 / 100;
  static final int KEEP_LAST = 5;
  static final int RUNS = 7;
  static final String SCHEDULE = "sim";

  /** What the process held while the schedule ran, and the counts it wrote meanwhile. */
  record State(String sum, long countFrom, long countTo) {}

  @Test
  void aScheduleKeepingTheLastFiveStoresLittleMoreThanOneCopyAndEachKeptCheckpointRestoresExactly() throws Exception {
    String storage = deduplicatingStorage();
    Path out = cluster.dir().resolve("memcounter-" + cluster.namespace() + ".txt");
    var counter = cluster.track(Workloads.startInPidNamespace("memcounter", Integer.toString(MEMORY_MIB),
        out.toString(), Integer.toString(REWRITE_MIB)));
    await().atMost(TIMEOUT).until(() -> Workloads.count(out) >= 3);
    createSuspendedSchedule(storage, counter.pid());

    // The schedule runs while the memory holds one state, then is suspended while 5% is rewritten,
    // so that each checkpoint it took is known to hold the state it ran in.
    Map<String, State> stateOf = new LinkedHashMap<>();
    Set<String> seen = new HashSet<>();
    long newBytes = 0;
    while (stateOf.size() < RUNS) {
      if (!stateOf.isEmpty()) {
        Workloads.signal(counter.pid(), "USR1");
      }
      String sum = Workloads.memorySum(counter.pid(), out, TIMEOUT);
      long from = Workloads.count(out);
      suspend(false);
      // suspended again as soon as it has started a run (Forbid: no second one starts meanwhile)
      await().atMost(TIMEOUT).until(() -> checkpointsOf(SCHEDULE).stream().anyMatch(c -> !seen.contains(name(c))));
      long suspended = suspend(true);
      await().atMost(TIMEOUT).until(() -> schedule().getStatus() != null
          && schedule().getStatus().observedGeneration != null && schedule().getStatus().observedGeneration >= suspended);
      await().atMost(TIMEOUT.multipliedBy(5)).until(() -> checkpointsOf(SCHEDULE).stream().allMatch(DeduplicatedScheduleIT::ended));
      assertThat(Workloads.memorySum(counter.pid(), out, TIMEOUT)).as("the memory is unchanged while the schedule runs")
          .isEqualTo(sum);
      State state = new State(sum, from, Workloads.count(out));
      for (Checkpoint c : checkpointsOf(SCHEDULE)) {
        if (seen.add(name(c))) {
          assertThat(c.getStatus().phase).as(name(c)).isEqualTo(CheckpointPhase.Completed);
          stateOf.put(name(c), state);
          newBytes += c.getStatus().archive.newBytes;
        }
      }
    }
    long memory = (long) MEMORY_MIB << 20;
    await("retention keeps the newest " + KEEP_LAST).atMost(TIMEOUT).until(() -> checkpointsOf(SCHEDULE).size() == KEEP_LAST);
    List<String> kept = checkpointsOf(SCHEDULE).stream().map(DeduplicatedScheduleIT::name).toList();
    List<String> newest = new ArrayList<>(stateOf.keySet()).subList(stateOf.size() - KEEP_LAST, stateOf.size());
    assertThat(kept).containsExactlyInAnyOrderElementsOf(newest);

    // The collection is due every 10 minutes: make it due now, as if they had passed, and wait for it.
    var usage = TestStorage.collectNow(cluster.client(), storage, "2s", TIMEOUT.multipliedBy(2)).getStatus().usage;
    double copies = (double) usage.storedBytes / memory;
    System.out.printf("DeduplicatedScheduleIT: %d checkpoints of %d MiB, %d kept: stored %d bytes (%.3f copies),"
        + " referenced %d, ratio %s; all runs added %d bytes%n", stateOf.size(), MEMORY_MIB, KEEP_LAST,
        usage.storedBytes, copies, usage.referencedBytes, usage.deduplicationRatio, newBytes);
    assertThat(usage.storedBytes).as("little more than one copy of the process's memory (%.3f copies)", copies)
        .isGreaterThan(memory).isLessThanOrEqualTo(memory * 16 / 10);
    assertThat(usage.referencedBytes).as("the %d kept checkpoints' logical size", KEEP_LAST)
        .isGreaterThan(KEEP_LAST * memory);
    assertThat(Double.parseDouble(usage.deduplicationRatio)).isGreaterThan(KEEP_LAST / 1.6);
    counter.close();

    // Nothing a kept checkpoint needs was collected: each restores with exactly its memory and counts on.
    for (String checkpoint : kept) {
      State state = stateOf.get(checkpoint);
      Restore restore = cluster.awaitRestore(cluster.createRestore(checkpoint, checkpoint), RestorePhase.Completed);
      long pid = restore.getStatus().restoredPid;
      cluster.afterTest(() -> Workloads.kill(pid));
      Workloads.awaitCountingOnFrom(out, state.countFrom(), state.countTo(), TIMEOUT);
      assertThat(Workloads.memorySum(pid, out, TIMEOUT)).as("%s restores the memory it was taken with", checkpoint)
          .isEqualTo(state.sum());
      Workloads.kill(pid);
      await().atMost(TIMEOUT).until(() -> "Exited".equals(cluster.restore(checkpoint).getStatus().processState));
    }
  }

  /** An S3 storage that deduplicates, with a grace period short enough for the test to see its collection. */
  private static String deduplicatingStorage() {
    String name = "schedule-" + cluster.namespace();
    TestStorage.s3(name, cluster.s3().endpoint(), "checkpoints").credentials(cluster.s3()).with(spec -> {
      spec.s3.prefix = name;
      spec.deduplication = true;
      spec.garbageCollection = new CheckpointStorageSpec.GarbageCollection();
      spec.garbageCollection.gracePeriod = "1s";
    }).create(cluster.client());
    await().atMost(TIMEOUT).until(() -> cluster.available(name));
    return name;
  }

  private static void createSuspendedSchedule(String storage, long pid) {
    CheckpointSchedule s = new CheckpointSchedule();
    s.setMetadata(new ObjectMetaBuilder().withName(SCHEDULE).withNamespace(cluster.namespace()).build());
    s.setSpec(new CheckpointScheduleSpec());
    s.getSpec().schedule = "@every 3s";
    s.getSpec().suspend = true;
    s.getSpec().concurrencyPolicy = ConcurrencyPolicy.Forbid;
    s.getSpec().retention = new CheckpointScheduleSpec.Retention();
    s.getSpec().retention.keepLast = KEEP_LAST;
    s.getSpec().checkpointTemplate = new CheckpointTemplate();
    s.getSpec().checkpointTemplate.target = CheckpointTarget.process(cluster.node(), (int) pid);
    s.getSpec().checkpointTemplate.storage = storage;
    cluster.client().resource(s).create();
  }

  /** A merge patch (the operator writes the schedule too); @return the schedule's generation with it. */
  private static long suspend(boolean suspend) {
    return cluster.client().resources(CheckpointSchedule.class).inNamespace(cluster.namespace()).withName(SCHEDULE)
        .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\": {\"suspend\": " + suspend + "}}")
        .getMetadata().getGeneration();
  }

  private static CheckpointSchedule schedule() {
    return cluster.client().resources(CheckpointSchedule.class).inNamespace(cluster.namespace()).withName(SCHEDULE)
        .get();
  }

  private static List<Checkpoint> checkpointsOf(String schedule) {
    return cluster.client().resources(Checkpoint.class).inNamespace(cluster.namespace())
        .withLabel(Labels.SCHEDULE, schedule).list().getItems();
  }

  private static boolean ended(Checkpoint c) {
    return c.getStatus() != null
        && (c.getStatus().phase == CheckpointPhase.Completed || c.getStatus().phase == CheckpointPhase.Failed);
  }

  private static String name(Checkpoint c) {
    return c.getMetadata().getName();
  }
}
