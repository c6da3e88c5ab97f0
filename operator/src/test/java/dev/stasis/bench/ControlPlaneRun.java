package dev.stasis.bench;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Many Checkpoints created at once, as a CheckpointSchedule over a large namespace or a GitOps sync
 * would: how long until every one has settled, and what that costs the operator. Their targets are
 * PIDs that do not exist, so each one goes the whole way (operator validates and assigns, the
 * agent takes it and fails it with ProcessNotFound) without dumping anything.
 */
final class ControlPlaneRun {
  // Above the highest PID Linux hands out (pid_max is at most 2^22), so it never exists.
  private static final int MISSING_PID = 4_194_304 + 1;
  private static final int CREATING_CLIENTS = 16;

  private final BenchEnvironment env;
  private final int count;

  ControlPlaneRun(BenchEnvironment env, int count) {
    this.env = env;
    this.count = count;
  }

  List<Figure> run(int repetitions) throws Exception {
    Samples settled = new Samples();
    Samples heapPeak = new Samples();
    Samples heapLive = new Samples();
    Samples cpu = new Samples();
    Map<String, Samples> othersCpu = new LinkedHashMap<>();
    Map<String, Long> others = env.controlPlanePids();
    others.put("agent", env.agent.pid());
    for (int rep = 0; rep < repetitions; rep++) {
      Benchmark.progress(String.format("%d Checkpoints at once: repetition %d of %d", count, rep + 1, repetitions));
      Map<String, Double> othersBefore = cpuOf(others);
      env.operator.startWindow();
      settled.add(createAndSettle("load-" + rep + "-"));
      RoleProcess.Usage usage = env.operator.endWindow();
      heapPeak.add(usage.heapPeakMiB());
      heapLive.add(usage.liveAfterGcMiB());
      cpu.add(usage.cpuSeconds());
      cpuOf(others).forEach((name, seconds) ->
          othersCpu.computeIfAbsent(name, n -> new Samples()).add(seconds - othersBefore.get(name)));
      deleteAll();
    }
    Map<String, Double> cpuDetails = new LinkedHashMap<>();
    cpuDetails.put("operator CPU", cpu.median());
    othersCpu.forEach((name, samples) -> cpuDetails.put(name + " CPU", samples.median()));
    String n = Integer.toString(count);
    return List.of(
        new Figure("controlplane-" + n + "-checkpoints-settled", "s", settled, null, Target.atMost(30), cpuDetails),
        new Figure("controlplane-" + n + "-checkpoints-operator-heap-peak", "MiB", heapPeak, null,
            Target.atMost(BenchEnvironment.OPERATOR_HEAP_MIB), Map.of("live heap after GC", heapLive.median())),
        new Figure("controlplane-" + n + "-checkpoints-operator-cpu", "s", cpu, null, null, Map.of()));
  }

  private static Map<String, Double> cpuOf(Map<String, Long> pids) throws IOException {
    Map<String, Double> cpu = new LinkedHashMap<>();
    for (var p : pids.entrySet()) {
      cpu.put(p.getKey(), RoleProcess.cpuSeconds(p.getValue()));
    }
    return cpu;
  }

  /** @return seconds from the first create call until the last Checkpoint settled */
  private double createAndSettle(String prefix) throws Exception {
    ExecutorService creators = Executors.newFixedThreadPool(CREATING_CLIENTS);
    try {
      List<Future<?>> created = new ArrayList<>();
      long start = System.nanoTime();
      for (int i = 0; i < count; i++) {
        String name = prefix + i;
        env.checkpoints.future(name);
        created.add(creators.submit(() -> env.client.resource(checkpoint(name)).create()));
      }
      for (Future<?> f : created) {
        f.get(5, TimeUnit.MINUTES);
      }
      long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(10);
      long last = 0;
      for (int i = 0; i < count; i++) {
        long remaining = Math.max(1, deadline - System.nanoTime());
        last = Math.max(last, env.checkpoints.future(prefix + i).get(remaining, TimeUnit.NANOSECONDS).nanoTime());
      }
      return (last - start) / 1e9;
    } finally {
      creators.shutdownNow();
    }
  }

  private static Checkpoint checkpoint(String name) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(BenchEnvironment.NAMESPACE).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(BenchEnvironment.NODE, MISSING_PID)));
    return c;
  }

  private void deleteAll() throws InterruptedException {
    var checkpoints = env.client.resources(Checkpoint.class).inNamespace(BenchEnvironment.NAMESPACE);
    checkpoints.delete();
    BenchEnvironment.await("the Checkpoints to be deleted", () -> checkpoints.list().getItems().isEmpty());
  }
}
