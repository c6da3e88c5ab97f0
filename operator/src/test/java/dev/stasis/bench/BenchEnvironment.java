package dev.stasis.bench;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.Restore;
import dev.stasis.api.S3Storage;
import dev.stasis.api.SecretReference;
import dev.stasis.cli.ControlPlane;
import dev.stasis.cli.Crds;
import dev.stasis.criu.Criu;
import dev.stasis.kube.StorageBinding;
import dev.stasis.testing.ImageJavaOptions;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.BooleanSupplier;

/**
 * Everything the benchmark runs against, started fresh and stopped at the end: a real
 * kube-apiserver + etcd, an S3 server (s3proxy) that both Stasis and the by-hand pipeline upload
 * to, and Stasis as on a cluster: the operator and the agent of node {@value #NODE}, each in a JVM
 * of its own. The operator gets the heap the target allows it (256 MiB).
 */
final class BenchEnvironment implements AutoCloseable {
  static final String NODE = "bench";
  static final String STORAGE = "bench-s3";
  static final String BUCKET = "stasis-bench";
  static final String NAMESPACE = "bench";
  static final int OPERATOR_HEAP_MIB = 256;

  final Path work;
  final Criu criu;
  final ControlPlane controlPlane;
  final KubernetesClient client;
  final S3Server s3;
  final RoleProcess operator;
  final RoleProcess agent;
  final Settlements<Checkpoint> checkpoints;
  final Settlements<Restore> restores;
  final ByHandPipeline byHand;
  /** Workloads running right now, ended by close() too if the run is interrupted. */
  final Set<Workloads.Workload> workloads = ConcurrentHashMap.newKeySet();
  private final AtomicBoolean closed = new AtomicBoolean();

  private BenchEnvironment(Path work, Criu criu, ControlPlane controlPlane, KubernetesClient client, S3Server s3,
      RoleProcess operator, RoleProcess agent) {
    this.work = work;
    this.criu = criu;
    this.controlPlane = controlPlane;
    this.client = client;
    this.s3 = s3;
    this.operator = operator;
    this.agent = agent;
    this.checkpoints = new Settlements<>(client, Checkpoint.class, NAMESPACE,
        c -> c.getStatus() != null && c.getStatus().phase != null && c.getStatus().phase.isTerminal());
    this.restores = new Settlements<>(client, Restore.class, NAMESPACE,
        r -> r.getStatus() != null && r.getStatus().phase != null && r.getStatus().phase.isTerminal());
    this.byHand = new ByHandPipeline(criu, s3.endpoint(), BUCKET, s3.accessKey(), s3.secretKey());
  }

  static BenchEnvironment start(Path work, Criu criu) throws Exception {
    List<AutoCloseable> started = new ArrayList<>();
    try {
      Path logs = Files.createDirectories(work.resolve("logs"));
      Benchmark.progress("starting the control plane (kube-apiserver + etcd)");
      ControlPlane controlPlane = ControlPlane.start(TestControlPlane.repoRoot().resolve("scripts/control-plane.sh"),
          work.resolve("control-plane"));
      started.add(controlPlane);
      KubernetesClient client = TestControlPlane.newClient(controlPlane.kubeconfig());
      started.add(client);
      Crds.install(client);
      client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(NAMESPACE).endMetadata().build())
          .create();

      Benchmark.progress("starting the S3 server (s3proxy)");
      S3Server s3 = S3Server.startJoiningMultipartParts();
      started.add(s3);
      s3.createBucket(BUCKET);
      createStorage(client, s3);

      Benchmark.progress("starting the operator and the agent, each in its own JVM");
      String kubeconfig = controlPlane.kubeconfig().toString();
      RoleProcess operator = RoleProcess.start("operator", List.of("-Xmx" + OPERATOR_HEAP_MIB + "m"),
          List.of("operator", "--kubeconfig", kubeconfig), logs);
      started.add(operator);
      RoleProcess agent = RoleProcess.start("agent", agentJvmOptions(TestControlPlane.repoRoot()),
          // as a cluster admin allows the benchmark's namespace to checkpoint host processes
          List.of("agent", "--node", NODE, "--work-dir", work.resolve("agent").toString(), "--allow-host-processes", NAMESPACE,
              "--criu", criu.executable().toString(), "--kubeconfig", kubeconfig,
              // any free port: other benchmarks or agents on the machine may hold the default one
              "--metrics-port", "0"), logs);
      started.add(agent);
      // For bench/profile-agent.sh, which attaches to this agent by its PID.
      Files.writeString(logs.resolve("agent.pid"), Long.toString(agent.pid()));
      await("the agent's NodeProfile", () -> client.resources(NodeProfile.class).withName(NODE).get() != null);
      await("storage " + STORAGE + " to be Available", () -> {
        CheckpointStorage s = client.resources(CheckpointStorage.class).withName(STORAGE).get();
        return s.getStatus() != null && "Available".equals(s.getStatus().phase);
      });
      return new BenchEnvironment(work, criu, controlPlane, client, s3, operator, agent);
    } catch (Exception e) {
      for (int i = started.size() - 1; i >= 0; i--) {
        started.get(i).close();
      }
      throw e;
    }
  }

  private static void createStorage(KubernetesClient client, S3Server s3) {
    client.resource(new SecretBuilder().withNewMetadata().withName(STORAGE).withNamespace("default").endMetadata()
        .withStringData(Map.of(StorageBinding.ACCESS_KEY_ID, s3.accessKey(),
            StorageBinding.SECRET_ACCESS_KEY, s3.secretKey()))
        .build()).create();
    CheckpointStorage storage = new CheckpointStorage();
    storage.setMetadata(new ObjectMetaBuilder().withName(STORAGE).build());
    storage.setSpec(new CheckpointStorageSpec());
    storage.getSpec().isDefault = true;
    storage.getSpec().s3 = new S3Storage();
    storage.getSpec().s3.endpoint = s3.endpoint();
    storage.getSpec().s3.bucket = BUCKET;
    storage.getSpec().s3.prefix = "stasis";
    storage.getSpec().s3.pathStyle = true;
    storage.getSpec().s3.credentialsSecret = new SecretReference(STORAGE, "default");
    client.resource(storage).create();
  }

  /** The kube-apiserver's and etcd's PIDs, from the pids file scripts/control-plane.sh keeps. */
  Map<String, Long> controlPlanePids() throws IOException {
    Map<String, Long> pids = new LinkedHashMap<>();
    for (String line : Files.readAllLines(controlPlane.dir().resolve("pids"))) {
      String[] fields = line.trim().split("\\s+");
      if (fields.length >= 2) {
        pids.put(fields[0], Long.parseLong(fields[1]));
      }
    }
    return pids;
  }

  static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("timed out after 2 minutes waiting for " + what);
      }
      Thread.sleep(50);
    }
  }

  /**
   * Stops everything in reverse order, the roles first, so that they do not log a vanished API
   * server; whatever fails to stop, the control plane is always stopped.
   */
  @Override
  public void close() {
    if (closed.getAndSet(true)) {
      return;
    }
    List<AutoCloseable> parts = new ArrayList<>(workloads);
    parts.addAll(List.of(checkpoints, restores, agent, operator, s3, client, controlPlane));
    for (AutoCloseable part : parts) {
      try {
        part.close();
      } catch (Exception e) {
        System.err.println("bench: stopping " + part + " failed: " + e);
      }
    }
  }

  /**
   * The agent's JVM as in its pod: the image's JVM options (images/java-options) with the chart's
   * memory limit for the agent (charts/stasis/values.yaml) as the RAM the JVM sizes its heap from,
   * as it would read it from the container's cgroup. Then extra options from {@code
   * STASIS_BENCH_AGENT_JVM_OPTIONS} (space-separated), e.g. a flight recording while profiling it.
   */
  static List<String> agentJvmOptions(Path repoRoot) throws IOException {
    List<String> options = new ArrayList<>(ImageJavaOptions.of(repoRoot));
    options.add("-XX:MaxRAM=" + chartAgentMemoryLimitBytes(repoRoot));
    String extra = System.getenv().getOrDefault("STASIS_BENCH_AGENT_JVM_OPTIONS", "").trim();
    if (!extra.isEmpty()) {
      options.addAll(List.of(extra.split("\\s+")));
    }
    return options;
  }

  private static long chartAgentMemoryLimitBytes(Path repoRoot) throws IOException {
    JsonNode limit = new ObjectMapper(new YAMLFactory()).readTree(repoRoot.resolve("charts/stasis/values.yaml").toFile())
        .at("/agent/resources/limits/memory");
    if (!limit.isTextual()) {
      throw new IOException("charts/stasis/values.yaml sets no agent.resources.limits.memory");
    }
    return Quantity.getAmountInBytes(new Quantity(limit.asText())).longValueExact();
  }
}
