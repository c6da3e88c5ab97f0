package dev.stasis.bench;

import dev.stasis.api.Compatibility;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.RestorePlacement;
import dev.stasis.operator.placement.CheckpointNeeds;
import dev.stasis.operator.placement.NodeProfileIndex;
import dev.stasis.operator.placement.PlacementDecision;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * How long placement takes: 1,000 Restores over 500 NodeProfiles, the way RestoreReconciler does it
 * (for every Restore: a placement over the listed profiles from its NodeProfileIndex, then one place
 * call), in a warmed-up JVM like a running operator's. The goal is under a second in total. Not a test: a timed test fails at random on a busy machine. Run it with
 * {@code bench/placement.sh} (or see there for the java command).
 *
 * <p>The cluster is varied the way real ones are: six CPU generations of 120-180 flags, three
 * CRIU versions, two runtimes, ten zones; a fifth of the Restores use a nodeSelector, a tenth ask
 * for Strict, one in twenty holds TCP connections, and some nodes already failed a pre-flight.
 */
public final class PlacementBenchmark {
  static final int NODES = 500;
  static final int RESTORES = 1_000;
  static final int WARM_UP_ROUNDS = 5;
  static final int MEASURED_ROUNDS = 5;

  public static void main(String[] args) {
    Random random = new Random(42);
    List<List<String>> generations = cpuGenerations(random);
    List<NodeProfile> profiles = new ArrayList<>();
    for (int i = 0; i < NODES; i++) {
      profiles.add(profile("node-" + i, random, generations));
    }
    List<Request> requests = new ArrayList<>();
    for (int i = 0; i < RESTORES; i++) {
      requests.add(request(random, profiles));
    }

    long started = System.nanoTime();
    NodeProfileIndex index = new NodeProfileIndex();
    index.placementOver(profiles);
    long firstIndex = System.nanoTime() - started;
    for (int round = 0; round < WARM_UP_ROUNDS; round++) {
      run(index, profiles, requests); // warm up the JIT, as in a long-running operator
    }
    long[] totals = new long[MEASURED_ROUNDS];
    int placed = 0;
    for (int round = 0; round < MEASURED_ROUNDS; round++) {
      started = System.nanoTime();
      placed = run(index, profiles, requests);
      totals[round] = System.nanoTime() - started;
    }
    long[] sorted = totals.clone();
    Arrays.sort(sorted);
    long median = sorted[MEASURED_ROUNDS / 2];

    System.out.printf("placed %d of %d restores over %d node profiles (the rest: no compatible node)%n", placed, RESTORES, NODES);
    System.out.printf("  %d ms in total (median of %d rounds: %s ms), %.0f us per restore%n", median / 1_000_000,
        MEASURED_ROUNDS, Arrays.stream(totals).mapToObj(t -> Long.toString(t / 1_000_000)).toList(), median / 1e3 / RESTORES);
    System.out.printf("  (preparing the 500 profiles the first time, before any placement: %d ms)%n", firstIndex / 1_000_000);
    System.out.printf("  goal: under 1000 ms in total: %s%n", median < 1_000_000_000L ? "met" : "MISSED");
  }

  private static int run(NodeProfileIndex index, List<NodeProfile> profiles, List<Request> requests) {
    int placed = 0;
    for (Request r : requests) {
      PlacementDecision decision = index.placementOver(profiles).place(r.needs, r.placement, r.failedPreflights);
      decision.summary(); // the status carries it
      if (decision.node().isPresent()) {
        placed++;
      }
    }
    return placed;
  }

  record Request(CheckpointNeeds needs, RestorePlacement placement, Map<String, String> failedPreflights) {}

  private static Request request(Random random, List<NodeProfile> profiles) {
    NodeProfile source = profiles.get(random.nextInt(profiles.size()));
    List<String> tcp = random.nextInt(20) == 0 ? List.of("10.0.0.1:5000 -> 10.0.0.2:40000") : List.of();
    CheckpointNeeds needs = new CheckpointNeeds(source.getMetadata().getName(), source.getSpec(),
        source.getSpec().criu.version, tcp, List.of(), false);
    RestorePlacement placement = new RestorePlacement();
    if (random.nextInt(5) == 0) {
      placement.nodeSelector = Map.of("zone", "zone-" + random.nextInt(10));
    }
    if (random.nextInt(10) == 0) {
      placement.compatibility = Compatibility.Strict;
    }
    Map<String, String> failed = random.nextInt(10) == 0
        ? Map.of(source.getMetadata().getName(), "PreflightPathMissing")
        : Map.of();
    return new Request(needs, placement, failed);
  }

  private static NodeProfile profile(String name, Random random, List<List<String>> generations) {
    int generation = random.nextInt(generations.size());
    NodeProfileSpec spec = new NodeProfileSpec();
    spec.arch = "x86_64";
    spec.cpu = new NodeProfileSpec.CpuInfo();
    spec.cpu.vendor = generation % 2 == 0 ? "GenuineIntel" : "AuthenticAMD";
    spec.cpu.modelName = "CPU generation " + generation;
    spec.cpu.flags = generations.get(generation);
    spec.kernelRelease = "6." + (1 + random.nextInt(3)) + ".0";
    spec.os = new NodeProfileSpec.OsInfo();
    spec.os.id = "debian";
    spec.os.versionId = "12";
    spec.criu = new NodeProfileSpec.CriuInfo();
    spec.criu.version = List.of("4.0.0", "4.1.1", "4.2.1").get(random.nextInt(3));
    spec.criu.checkPassed = true;
    spec.criu.features = List.of("mnt_id", "timens", "network_lock_nftables", "pidfd_store", "uffd");
    spec.runtime = new NodeProfileSpec.RuntimeInfo();
    spec.runtime.name = random.nextInt(4) == 0 ? "cri-o" : "containerd";
    spec.workDirFreeBytes = (long) random.nextInt(1_000) << 30;
    NodeProfile profile = new NodeProfile();
    // As listed from the API server: a uid and a resourceVersion, unchanged from one Restore to the next.
    profile.setMetadata(new ObjectMetaBuilder().withName(name).withUid("uid-" + name).withResourceVersion("1")
        .withLabels(Map.of("zone", "zone-" + random.nextInt(10), "kubernetes.io/hostname", name)).build());
    profile.setSpec(spec);
    return profile;
  }

  /** Six flag sets, each newer one a superset of the one before, 120 to 180 flags. */
  private static List<List<String>> cpuGenerations(Random random) {
    List<List<String>> generations = new ArrayList<>();
    List<String> flags = new ArrayList<>();
    for (int g = 0; g < 6; g++) {
      while (flags.size() < 120 + g * 12) {
        flags.add("flag" + flags.size() + "_" + Integer.toHexString(random.nextInt(0xffff)));
      }
      generations.add(List.copyOf(flags));
    }
    return generations;
  }
}
