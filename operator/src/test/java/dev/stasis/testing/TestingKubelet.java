package dev.stasis.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import dev.stasis.criu.Criu;
import dev.stasis.criu.CriuException;
import dev.stasis.criu.DumpOptions;
import dev.stasis.criu.TreeOptions;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.api.model.authentication.UserInfo;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;

/**
 * Stands in for a kubelet where the real node of scripts/node.sh ({@link TestNode}) cannot go:
 * faults it cannot be made to produce (its ContainerCheckpoint feature gate off, a runtime that
 * hangs), nodes this machine does not have (it runs one), and tests of other parts (registries,
 * storages, schedules) that only need some pod checkpoint to work on. It serves the kubelet's documented checkpoint API over HTTPS ({@code POST
 * /checkpoint/{namespace}/{pod}/{container}?timeout=N}): the bearer token is authenticated by
 * TokenReview and authorized by SubjectAccessReview ({@code create nodes/checkpoint}) against the
 * real API server, as a kubelet with webhook auth does, and the archive is produced with real CRIU
 * on a real process, in CRI-O's layout ({@code config.dump}, {@code spec.dump}, {@code checkpoint/}
 * with CRIU's images, {@code dump.log}, {@code stats-dump}, {@code rootfs-diff.tar}), in its
 * checkpoint folder, named as the kubelet names it. Error answers are the kubelet's: 401, 403, 404
 * (pod or container unknown, or the feature gate off), 500 (the runtime's error, including a
 * deadline exceeded).
 *
 * <p>On the API server it plays the kubelet's other part: {@link #runPod} creates a pod bound to
 * its node and reports it Running with the test's process as its container.
 */
public final class TestingKubelet implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String node;
  private final KubernetesClient admin;
  private final Criu criu;
  private final Path checkpointDir;
  private final Path workDir;
  private final HttpsServer server;
  private final Map<String, Long> processes = new ConcurrentHashMap<>();
  private final Object dumps = new Object();
  private final CountDownLatch closed = new CountDownLatch(1);
  private volatile boolean featureGateOn = true;
  private volatile boolean answering = true;

  private TestingKubelet(String node, KubernetesClient admin, Criu criu, Path checkpointDir, Path workDir,
      HttpsServer server) {
    this.node = node;
    this.admin = admin;
    this.criu = criu;
    this.checkpointDir = checkpointDir;
    this.workDir = workDir;
    this.server = server;
  }

  public static TestingKubelet start(String node, KubernetesClient admin, Path criu, TestCa.ServerCertificate cert,
      Path dir) throws Exception {
    Path checkpoints = Files.createDirectories(dir.resolve("kubelet/checkpoints"));
    Path work = Files.createDirectories(dir.resolve("kubelet/containers"));
    SSLContext tls = cert.serverContext();
    HttpsServer server = HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 16);
    server.setHttpsConfigurator(new HttpsConfigurator(tls));
    server.setExecutor(Executors.newCachedThreadPool());
    var kubelet = new TestingKubelet(node, admin, new Criu(criu, Map.of()), checkpoints, work, server);
    server.createContext("/", kubelet::handle);
    server.start();
    return kubelet;
  }

  public URI url() {
    return URI.create("https://127.0.0.1:" + server.getAddress().getPort());
  }

  /** The kubelet's checkpoint folder, as the agent's hostPath would show it. */
  public Path checkpointDir() {
    return checkpointDir;
  }

  /** As with the ContainerCheckpoint feature gate off: the kubelet has no /checkpoint route. */
  public void featureGateOn(boolean on) {
    featureGateOn = on;
  }

  /** A kubelet that takes requests but never answers them (a hung runtime). */
  public void answering(boolean on) {
    answering = on;
  }

  /**
   * Binds {@code pod} to this node and reports it Running, each container being the process of
   * the test given for it; containers without one are reported Running but have no process.
   */
  public Pod runPod(Pod pod, Map<String, Long> pids) {
    pod.getSpec().setNodeName(node);
    Pod created = admin.resource(pod).create();
    var status = new PodStatusBuilder().withPhase("Running").withHostIP("127.0.0.1");
    for (Container c : created.getSpec().getContainers()) {
      status.addNewContainerStatus().withName(c.getName()).withImage(c.getImage()).withReady(true)
          .withContainerID("cri-o://" + UUID.randomUUID().toString().replace("-", ""))
          .withNewState().withNewRunning().withStartedAt(Instant.now().truncatedTo(ChronoUnit.SECONDS).toString())
          .endRunning().endState().endContainerStatus();
      Long pid = pids.get(c.getName());
      if (pid != null) {
        processes.put(key(created.getMetadata().getNamespace(), created.getMetadata().getName(), c.getName()), pid);
      }
    }
    created.setStatus(status.build());
    return admin.resource(created).updateStatus();
  }

  /**
   * Does what the kubelet and CRI-O do with a pod bound to this node, as far as the registry is
   * concerned: pulls each container's image manifest and reports the pod Running if every image
   * is there (CRI-O restores an image annotated as a checkpoint), or the container waiting with
   * ErrImagePull, as the kubelet would.
   */
  public Pod startPod(String namespace, String name, RegistryServer registry) throws Exception {
    Pod pod = admin.pods().inNamespace(namespace).withName(name).get();
    if (!node.equals(pod.getSpec().getNodeName())) {
      throw new IllegalStateException("pod " + name + " is not bound to node " + node);
    }
    var status = new PodStatusBuilder().withPhase("Running").withHostIP("127.0.0.1");
    for (Container c : pod.getSpec().getContainers()) {
      String image = c.getImage();
      int at = image.indexOf('@');
      boolean fromTestRegistry = image.startsWith(registry.host() + "/") && at > 0;
      var manifest = fromTestRegistry
          ? registry.get("/v2/" + image.substring(registry.host().length() + 1, at) + "/manifests/" + image.substring(at + 1),
              "application/vnd.oci.image.manifest.v1+json")
          : null;
      var container = status.addNewContainerStatus().withName(c.getName()).withImage(image)
          .withContainerID("cri-o://" + UUID.randomUUID().toString().replace("-", ""));
      // Images elsewhere stand for the pod's ordinary images, which nodes pull as usual.
      if (!fromTestRegistry || manifest.statusCode() == 200) {
        container.withReady(true).withNewState().withNewRunning().withStartedAt(Instant.now().toString()).endRunning()
            .endState().endContainerStatus();
      } else {
        status.withPhase("Pending");
        container.withReady(false).withNewState().withNewWaiting().withReason("ErrImagePull")
            .withMessage("reading manifest of " + image + ": manifest unknown").endWaiting().endState()
            .endContainerStatus();
      }
    }
    pod.setStatus(status.build());
    return admin.resource(pod).updateStatus();
  }

  @Override
  public void close() {
    closed.countDown();
    server.stop(0);
    ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
  }

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      String[] path = exchange.getRequestURI().getPath().split("/");
      if (!featureGateOn || path.length != 5 || !path[1].equals("checkpoint")) {
        answer(exchange, 404, "404 page not found");
        return;
      }
      if (!exchange.getRequestMethod().equals("POST")) {
        answer(exchange, 405, "405 method not allowed");
        return;
      }
      UserInfo user = authenticate(exchange.getRequestHeaders().getFirst("Authorization"));
      if (user == null) {
        answer(exchange, 401, "Unauthorized");
        return;
      }
      if (!authorized(user)) {
        answer(exchange, 403, "Forbidden (user=" + user.getUsername() + ", verb=create, resource=nodes, subresource(s)=[checkpoint])");
        return;
      }
      if (!answering) {
        closed.await(5, TimeUnit.MINUTES);
        return;
      }
      checkpoint(exchange, path[2], path[3], path[4], timeout(exchange.getRequestURI().getQuery()));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (RuntimeException e) {
      answer(exchange, 500, "internal error: " + e);
    }
  }

  private UserInfo authenticate(String authorization) {
    if (authorization == null || !authorization.startsWith("Bearer ")) {
      return null;
    }
    TokenReview review = admin.resource(new TokenReviewBuilder().withNewSpec()
        .withToken(authorization.substring("Bearer ".length())).endSpec().build()).create();
    return review.getStatus() != null && Boolean.TRUE.equals(review.getStatus().getAuthenticated())
        ? review.getStatus().getUser()
        : null;
  }

  private boolean authorized(UserInfo user) {
    SubjectAccessReview review = admin.resource(new SubjectAccessReviewBuilder().withNewSpec()
        .withUser(user.getUsername()).withGroups(user.getGroups()).withUid(user.getUid()).withExtra(user.getExtra())
        .withNewResourceAttributes().withVerb("create").withResource("nodes").withSubresource("checkpoint")
        .withName(node).endResourceAttributes().endSpec().build()).create();
    return review.getStatus() != null && review.getStatus().getAllowed();
  }

  private void checkpoint(HttpExchange exchange, String namespace, String podName, String container, Duration timeout)
      throws IOException, InterruptedException {
    Pod pod = admin.pods().inNamespace(namespace).withName(podName).get();
    if (pod == null || !node.equals(pod.getSpec().getNodeName())) {
      answer(exchange, 404, "pod does not exist");
      return;
    }
    if (pod.getSpec().getContainers().stream().noneMatch(c -> c.getName().equals(container))) {
      answer(exchange, 404, "container " + container + " does not exist");
      return;
    }
    String what = namespace + "/" + podName + "/" + container;
    Long pid = processes.get(key(namespace, podName, container));
    if (pid == null) {
      answer(exchange, 500, "checkpointing of " + what + " failed (rpc error: code = Unknown desc = container is not running)");
      return;
    }
    Path containerDir = workDir.resolve(UUID.randomUUID().toString());
    try {
      // The test's processes share one working directory, unlike containers: CRIU's parasite mounts
      // /proc at ./proc.crtools there for a process in its own PID namespace, so two dumps at once collide.
      synchronized (dumps) {
        criu.dump(new DumpOptions(pid.intValue(), containerDir.resolve("checkpoint"), containerDir, false, false,
            TreeOptions.PLAIN, timeout));
      }
      writeMetadata(containerDir, pod, container);
      String name = "checkpoint-" + podName + "_" + namespace + "-" + container + "-"
          + Instant.now().truncatedTo(ChronoUnit.SECONDS) + ".tar";
      Path archive = checkpointDir.resolve(name);
      tar(containerDir, archive);
      answer(exchange, 200, "{\"items\":[\"/var/lib/kubelet/checkpoints/" + name + "\"]}");
    } catch (CriuException e) {
      String code = e.reason().equals("CriuTimeout") ? "DeadlineExceeded desc = context deadline exceeded"
          : "Unknown desc = failed to checkpoint container: " + e.getMessage();
      answer(exchange, 500, "checkpointing of " + what + " failed (rpc error: code = " + code + ")");
    } finally {
      deleteTree(containerDir);
    }
  }

  /** config.dump and spec.dump as CRI-O writes them (the fields checkpointctl and a CRI-O restore read). */
  private void writeMetadata(Path dir, Pod pod, String container) throws IOException, InterruptedException {
    String now = Instant.now().toString();
    String image = pod.getSpec().getContainers().stream().filter(c -> c.getName().equals(container))
        .map(Container::getImage).findFirst().orElseThrow();
    String id = pod.getStatus().getContainerStatuses().stream().filter(s -> s.getName().equals(container))
        .map(s -> s.getContainerID().replace("cri-o://", "")).findFirst().orElseThrow();
    ObjectNode config = JSON.createObjectNode()
        .put("id", id).put("name", "k8s_" + container + "_" + pod.getMetadata().getName() + "_"
            + pod.getMetadata().getNamespace() + "_" + pod.getMetadata().getUid() + "_0")
        .put("rootfsImage", image).put("rootfsImageName", image).put("runtime", "runc")
        .put("createdTime", now).put("checkpointedTime", now).put("restoredTime", "0001-01-01T00:00:00Z")
        .put("restored", false);
    Files.write(dir.resolve("config.dump"), JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(config));
    Map<String, String> kubernetes = new HashMap<>();
    kubernetes.put("io.kubernetes.pod.name", pod.getMetadata().getName());
    kubernetes.put("io.kubernetes.pod.namespace", pod.getMetadata().getNamespace());
    kubernetes.put("io.kubernetes.pod.uid", pod.getMetadata().getUid());
    kubernetes.put("io.kubernetes.container.name", container);
    Map<String, String> annotations = new HashMap<>(kubernetes);
    annotations.put("io.container.manager", "cri-o");
    annotations.put("io.kubernetes.cri-o.Metadata", "{\"name\":\"" + container + "\"}");
    annotations.put("io.kubernetes.cri-o.Created", now);
    annotations.put("io.kubernetes.cri-o.ContainerName", config.get("name").asText());
    annotations.put("io.kubernetes.cri-o.Annotations", JSON.writeValueAsString(kubernetes));
    ObjectNode spec = JSON.createObjectNode().put("ociVersion", "1.0.2-dev");
    spec.putObject("root").put("path", "/var/lib/containers/storage/overlay/" + id + "/merged");
    spec.set("annotations", JSON.valueToTree(annotations));
    Files.write(dir.resolve("spec.dump"), JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(spec));
    // The container's file system changes; the test workloads write outside their root file system.
    Path changes = Files.createDirectories(dir.resolve("rootfs-changes"));
    Files.writeString(changes.resolve("checkpointed-at"), now + "\n");
    run(dir, "tar", "-C", changes.toString(), "-cf", dir.resolve("rootfs-diff.tar").toString(), ".");
  }

  /** The archive holds what CRI-O includes, readable by root only: it holds every memory page. */
  private static void tar(Path dir, Path archive) throws IOException, InterruptedException {
    List<String> files = new ArrayList<>();
    for (String name : List.of("stats-dump", "dump.log", "checkpoint", "config.dump", "spec.dump", "rootfs-diff.tar")) {
      if (Files.exists(dir.resolve(name))) {
        files.add(name);
      }
    }
    List<String> command = new ArrayList<>(List.of("tar", "-C", dir.toString(), "-cf", archive.toString()));
    command.addAll(files);
    run(dir, command.toArray(String[]::new));
    Files.setPosixFilePermissions(archive, PosixFilePermissions.fromString("rw-------"));
  }

  private static void run(Path dir, String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new IOException(String.join(" ", command) + " failed: " + output);
    }
  }

  private static Duration timeout(String query) {
    if (query != null) {
      for (String pair : query.split("&")) {
        if (pair.startsWith("timeout=")) {
          return Duration.ofSeconds(Long.parseLong(pair.substring("timeout=".length())));
        }
      }
    }
    return Duration.ofMinutes(4); // the CRI's default
  }

  private static void answer(HttpExchange exchange, int code, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", code == 200 ? "application/json" : "text/plain; charset=utf-8");
    exchange.sendResponseHeaders(code, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }

  private static String key(String namespace, String pod, String container) {
    return namespace + "/" + pod + "/" + container;
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (var paths = Files.walk(dir)) {
      for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
