package dev.stasis.bench;

import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.RestorePlacement;
import dev.stasis.operator.placement.CheckpointNeeds;
import dev.stasis.operator.placement.NodeProfileIndex;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Placement of many Restores over a large cluster, as the operator decides it: each restore's
 * source profile against every NodeProfile. Nodes differ the way real fleets do: two
 * architectures, several CPU generations (flag sets), several CRIU versions.
 */
final class PlacementRun {
  private static final String[] CRIU_VERSIONS = {"3.17.1", "4.0", "4.1.1", "4.2.1"};
  private static final String[] MODELS = {"AMD EPYC 7B13", "AMD EPYC 9B14", "Intel Xeon Platinum 8375C",
      "Intel Xeon Gold 6338", "Ampere Altra"};

  private final int nodes;
  private final int restores;

  PlacementRun(int nodes, int restores) {
    this.nodes = nodes;
    this.restores = restores;
  }

  List<Figure> run(int repetitions) {
    Random random = new Random(42);
    List<String> flags = flagUniverse();
    List<NodeProfile> profiles = new ArrayList<>();
    for (int i = 0; i < nodes; i++) {
      profiles.add(profile("node-" + i, random, flags));
    }
    List<NodeProfile> sources = new ArrayList<>();
    for (int i = 0; i < restores; i++) {
      sources.add(profiles.get(random.nextInt(nodes)));
    }
    place(profiles, sources); // warm-up: the operator is a long-running process, its code is compiled
    Samples seconds = new Samples();
    for (int rep = 0; rep < repetitions; rep++) {
      long start = System.nanoTime();
      int placed = place(profiles, sources);
      seconds.add((System.nanoTime() - start) / 1e9);
      if (placed == 0) {
        throw new IllegalStateException("no restore could be placed: the generated cluster is wrong");
      }
    }
    return List.of(new Figure("placement-" + restores + "-restores-" + nodes + "-nodes", "s", seconds, null,
        Target.atMost(1), Map.of()));
  }

  /** @return how many restores found a node */
  private static int place(List<NodeProfile> profiles, List<NodeProfile> sources) {
    NodeProfileIndex index = new NodeProfileIndex();
    int placed = 0;
    for (NodeProfile source : sources) {
      var needs = new CheckpointNeeds(source.getMetadata().getName(), source.getSpec(),
          source.getSpec().criu.version, List.of(), List.of(), false);
      if (index.placementOver(profiles).place(needs, new RestorePlacement(), Map.of()).node().isPresent()) {
        placed++;
      }
    }
    return placed;
  }

  private static NodeProfile profile(String name, Random random, List<String> flags) {
    NodeProfileSpec spec = new NodeProfileSpec();
    boolean arm = random.nextInt(10) == 0;
    spec.arch = arm ? "aarch64" : "x86_64";
    spec.kernelRelease = "6." + (1 + random.nextInt(18)) + ".0";
    spec.cpu = new NodeProfileSpec.CpuInfo();
    spec.cpu.modelName = arm ? MODELS[4] : MODELS[random.nextInt(4)];
    // Newer CPU generations have more of the flags.
    int generation = 60 + random.nextInt(41);
    for (int i = 0; i < flags.size(); i++) {
      if (i * 100 / flags.size() < generation) {
        spec.cpu.flags.add(flags.get(i));
      }
    }
    spec.criu = new NodeProfileSpec.CriuInfo();
    spec.criu.version = CRIU_VERSIONS[random.nextInt(CRIU_VERSIONS.length)];
    spec.criu.checkPassed = true;
    NodeProfile profile = new NodeProfile();
    profile.setMetadata(new ObjectMetaBuilder().withName(name).build());
    profile.setSpec(spec);
    return profile;
  }

  /** 120 flags, as many as a current x86 CPU reports. */
  private static List<String> flagUniverse() {
    List<String> flags = new ArrayList<>(List.of("fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8",
        "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat", "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "ht",
        "syscall", "nx", "mmxext", "fxsr_opt", "pdpe1gb", "rdtscp", "lm", "constant_tsc", "rep_good", "nopl",
        "xtopology", "nonstop_tsc", "cpuid", "extd_apicid", "tsc_known_freq", "pni", "pclmulqdq", "ssse3", "fma",
        "cx16", "pcid", "sse4_1", "sse4_2", "x2apic", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand",
        "hypervisor", "lahf_lm", "cmp_legacy", "cr8_legacy", "abm", "sse4a", "misalignsse", "3dnowprefetch",
        "osvw", "topoext", "perfctr_core", "invpcid_single", "ssbd", "ibrs", "ibpb", "stibp", "vmmcall",
        "fsgsbase", "tsc_adjust", "bmi1", "avx2", "smep", "bmi2", "erms", "invpcid", "rdseed", "adx", "smap",
        "clflushopt", "clwb", "sha_ni", "xsaveopt", "xsavec", "xgetbv1", "xsaves", "clzero", "xsaveerptr",
        "rdpru", "wbnoinvd", "arat", "npt", "nrip_save", "umip", "pku", "ospke", "vaes", "vpclmulqdq", "rdpid",
        "fsrm", "avx512f", "avx512dq", "avx512ifma", "avx512cd", "avx512bw", "avx512vl", "avx512_bf16",
        "avx512vbmi", "avx512_vbmi2", "gfni", "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq", "la57",
        "movdiri", "movdir64b", "amx_tile"));
    return flags;
  }
}
