package dev.stasis.testing;

import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.agent.RuntimeSettings;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.EncryptionSpec;
import dev.stasis.api.FileSystemStorage;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.RegistrySpec;
import dev.stasis.cli.Crds;
import dev.stasis.cli.Main;
import dev.stasis.criu.Criu;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;

/**
 * The real one-node cluster of {@code scripts/node.sh} (kubelet, containerd with CRIU, a local
 * registry, its own control plane), shared by every test class of a test run that extends with
 * it: started when the first of them needs it, stopped when the run ends. The node is the
 * machine's: while another run (or {@code make cluster}) holds it, starting waits for it, up to
 * {@code -Dstasis.node.wait} seconds (default 1800). The cluster has Stasis' CRDs and
 * config/rbac; tests isolate themselves by namespace.
 *
 * <p>Use: {@code @ExtendWith(TestNode.Extension.class)} on the class and a {@code TestNode}
 * parameter on a {@code @BeforeAll} method.
 */
public final class TestNode implements AutoCloseable {
  private final Path dir;
  private final Map<String, String> env;
  private final KubernetesClient admin;

  private TestNode(Path dir, Map<String, String> env, KubernetesClient admin) {
    this.dir = dir;
    this.env = env;
    this.admin = admin;
  }

  static TestNode start() throws Exception {
    Path repo = TestControlPlane.repoRoot();
    // Short: containerd's socket paths under it must fit a socket address.
    Path dir = Files.createTempDirectory(repo.resolve("operator/target"), "node-");
    Path log = dir.resolve("node.sh.log");
    String wait = System.getProperty("stasis.node.wait", "1800");
    Process start = new ProcessBuilder(repo.resolve("scripts/node.sh").toString(), "start", dir.toString(), "--wait", wait)
        .redirectErrorStream(true).redirectOutput(log.toFile()).start();
    if (!start.waitFor(Long.parseLong(wait) + 1800, TimeUnit.SECONDS)) {
      start.destroyForcibly().waitFor();
      stop(dir); // what it started before it was killed
      throw new IllegalStateException("scripts/node.sh start " + dir + " did not finish:\n" + Files.readString(log));
    }
    if (start.exitValue() != 0) {
      throw new IllegalStateException("scripts/node.sh start " + dir + " failed:\n" + Files.readString(log));
    }
    Map<String, String> env = new HashMap<>();
    for (String line : Files.readAllLines(dir.resolve("node.env"))) {
      int eq = line.indexOf('=');
      if (eq > 0) {
        env.put(line.substring(0, eq), line.substring(eq + 1));
      }
    }
    TestNode node = new TestNode(dir, env, TestControlPlane.newClient(Path.of(env.get("KUBECONFIG"))));
    try {
      Crds.install(node.admin);
      new Kubectl(node.kubeconfig()).run("apply", "-k", "config/rbac").ok();
    } catch (Exception | AssertionError e) {
      node.close();
      throw e;
    }
    return node;
  }

  /** The folder scripts/node.sh started the node in. */
  public Path dir() {
    return dir;
  }

  /** cluster-admin of the node's cluster. */
  public KubernetesClient admin() {
    return admin;
  }

  public Path kubeconfig() {
    return Path.of(env.get("KUBECONFIG"));
  }

  /** The Node's name. */
  public String name() {
    return env.get("NODE_NAME");
  }

  /** https://NODE_IP:10250; its serving certificate is signed by {@link #clusterCa()}. */
  public URI kubeletUrl() {
    return URI.create(env.get("KUBELET_URL"));
  }

  /** The cluster's CA, as every ServiceAccount's ca.crt holds it. */
  public Path clusterCa() {
    return Path.of(env.get("CLUSTER_CA"));
  }

  /** Where the kubelet has the runtime write checkpoint archives. */
  public Path checkpointDir() {
    return Path.of(env.get("KUBELET_CHECKPOINT_DIR"));
  }

  /** Where containerd keeps images. */
  public Path imageStore() {
    return Path.of(env.get("CONTAINERD_ROOT"));
  }

  /** The node's containerd as an agent on it is told: its configuration and image store live in the node's folder. */
  public RuntimeSettings runtime() {
    return new RuntimeSettings(Path.of(env.get("CONTAINERD_CONFIG")), RuntimeSettings.CRIO_SOCKET,
        RuntimeSettings.Restore.AUTO, imageStore());
  }

  /**
   * The node's registry (host:port on 127.0.0.1, plain HTTP, no credentials), which containerd
   * pulls pods' images from.
   */
  public String registry() {
    return env.get("REGISTRY");
  }

  /** The same registry on the node's address, where pods reach it: checkpoint images go there. */
  public String podRegistry() {
    return env.get("POD_REGISTRY");
  }

  /**
   * The operator and this node's agent in the test JVM, with their /metrics, once the agent has
   * published its NodeProfile. The agent asks the kubelet at {@code kubeletUrl} (the node's, or a
   * {@link KubeletTap} in front of it), trusting the cluster CA and showing the token in
   * {@code tokenFile}, which it reads on every call as an agent's projected token.
   */
  public InProcessStasis startStasis(Path workDir, URI kubeletUrl, Path tokenFile) {
    return startStasis(workDir, kubeletUrl, tokenFile, runtime());
  }

  /** As {@link #startStasis(Path, URI, Path)}, with the agent told so about the node's runtime. */
  public InProcessStasis startStasis(Path workDir, URI kubeletUrl, Path tokenFile, RuntimeSettings runtime) {
    var kubelet = new KubeletSettings(kubeletUrl, tokenFile, clusterCa(), false, checkpointDir(), Duration.ofSeconds(5));
    var agent = new AgentConfig(name(), workDir, new Criu(Main.criuPath(null), Map.of()), Set.of(), kubelet)
        .withRuntime(runtime);
    InProcessStasis stasis = InProcessStasis.on(admin).agent(agent, admin).withMetricsServer().start();
    await().atMost(Duration.ofSeconds(120))
        .until(() -> admin.resources(NodeProfile.class).withName(name()).get() != null);
    return stasis;
  }

  /**
   * A filesystem storage in {@code root} whose pod checkpoints are restored through the node's
   * registry as pods reach it ({@link #podRegistry}), where the agent pushes when it runs as a pod
   * and the kubelet pulls from.
   */
  public String podStorage(String name, Path root, EncryptionSpec encryption) {
    return podStorage(name, root, encryption, null);
  }

  /** As {@link #podStorage(String, Path, EncryptionSpec)}, its checkpoint images kept that long once their pod runs. */
  public String podStorage(String name, Path root, EncryptionSpec encryption, String imageGracePeriod) {
    return configuredPodStorage(name, root, spec -> {
      spec.registry.imageGracePeriod = imageGracePeriod;
      spec.encryption = encryption;
    });
  }

  /** A storage for pod checkpoints in {@code root}, with the node's registry, as {@code configure} makes it. */
  public String configuredPodStorage(String name, Path root, Consumer<CheckpointStorageSpec> configure) {
    CheckpointStorage s = new CheckpointStorage();
    s.setMetadata(new ObjectMetaBuilder().withName(name).build());
    s.setSpec(new CheckpointStorageSpec());
    s.getSpec().filesystem = new FileSystemStorage(root.toString());
    s.getSpec().registry = new RegistrySpec();
    s.getSpec().registry.url = "http://" + podRegistry() + "/stasis";
    s.getSpec().registry.insecure = true;
    configure.accept(s.getSpec());
    admin.resource(s).create();
    return name;
  }

  /** Writes a token of ServiceAccount {@code namespace/name} to {@code file}. */
  public Path writeToken(Path file, String namespace, String serviceAccount) throws IOException {
    String token = admin.serviceAccounts().inNamespace(namespace).withName(serviceAccount)
        .tokenRequest(new TokenRequestBuilder().withNewSpec().withExpirationSeconds(3600L).endSpec().build())
        .getStatus().getToken();
    return Files.writeString(file, token);
  }

  /**
   * A fresh namespace for one test, with its "default" ServiceAccount (which kube-controller-manager
   * creates, and without which ServiceAccount admission refuses pods).
   */
  public String newNamespace(String prefix) {
    String name = prefix + "-" + UUID.randomUUID().toString().substring(0, 6);
    admin.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(name).endMetadata().build()).create();
    admin.serviceAccounts().inNamespace(name).withName("default")
        .waitUntilCondition(java.util.Objects::nonNull, 60, TimeUnit.SECONDS);
    return name;
  }

  /**
   * Removes an image from containerd on the node, under every name the kubelet reports for it (the
   * Node's status.images entry that names {@code reference}), as image garbage collection would.
   */
  public void removeImage(String reference) throws IOException, InterruptedException {
    List<String> names = admin.nodes().withName(name()).get().getStatus().getImages().stream()
        .filter(i -> i.getNames() != null && i.getNames().contains(reference)).findFirst()
        .orElseThrow(() -> new IllegalStateException("node " + name() + " lists no image " + reference)).getNames();
    List<String> command = new ArrayList<>(List.of(env.get("CTR"), "--address", env.get("CONTAINERD_ADDRESS"),
        "--namespace", "k8s.io", "images", "rm"));
    command.addAll(names);
    Process rm = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(rm.getInputStream().readAllBytes());
    if (!rm.waitFor(1, TimeUnit.MINUTES) || rm.exitValue() != 0) {
      throw new IllegalStateException(String.join(" ", command) + " failed: " + output);
    }
  }

  /**
   * Sets containerd's enable_experimental_restore_via_create and restarts containerd to read it
   * (scripts/node.sh restore-via-create); the node's containers run on meanwhile.
   */
  public void restoreViaCreate(boolean on) throws IOException, InterruptedException {
    Path log = dir.resolve("node.sh-restore-via-create.log");
    Process set = new ProcessBuilder(TestControlPlane.repoRoot().resolve("scripts/node.sh").toString(),
        "restore-via-create", dir.toString(), Boolean.toString(on)).redirectErrorStream(true)
        .redirectOutput(log.toFile()).start();
    if (!set.waitFor(3, TimeUnit.MINUTES) || set.exitValue() != 0) {
      set.destroyForcibly();
      throw new IllegalStateException("scripts/node.sh restore-via-create " + on + " failed:\n" + Files.readString(log));
    }
  }

  @Override
  public void close() throws IOException, InterruptedException {
    admin.close();
    stop(dir);
  }

  /** Stops the node of {@code dir}; fails if scripts/node.sh finds anything of it left. */
  private static void stop(Path dir) throws IOException, InterruptedException {
    Path log = dir.resolve("node.sh-stop.log");
    Process stop = new ProcessBuilder(TestControlPlane.repoRoot().resolve("scripts/node.sh").toString(), "stop",
        dir.toString()).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    if (!stop.waitFor(5, TimeUnit.MINUTES) || stop.exitValue() != 0) {
      stop.destroyForcibly();
      throw new IllegalStateException("scripts/node.sh stop " + dir + " failed:\n" + Files.readString(log));
    }
  }

  /** Starts the node once per test run (JUnit's root store closes it when the run ends). */
  public static final class Extension implements BeforeAllCallback, ParameterResolver {
    private static final ExtensionContext.Namespace NAMESPACE = ExtensionContext.Namespace.create(TestNode.class);

    @Override
    public void beforeAll(ExtensionContext context) {
      node(context);
    }

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
      return parameter.getParameter().getType() == TestNode.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
      return node(context);
    }

    private static TestNode node(ExtensionContext context) {
      return context.getRoot().getStore(NAMESPACE).getOrComputeIfAbsent(TestNode.class, key -> {
        try {
          return start();
        } catch (Exception e) {
          throw new IllegalStateException("the real node did not start: " + e.getMessage(), e);
        }
      }, TestNode.class);
    }
  }
}
