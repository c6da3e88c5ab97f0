package dev.stasis.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.cli.Main;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.StorageBinding;
import dev.stasis.storage.ObjectStore;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The real parts of the end-to-end tests, started once for a test class: the API server
 * (scripts/control-plane.sh), the operator and agents in this JVM ({@link InProcessStasis}) with real
 * CRIU, an S3 server (s3proxy) and a filesystem storage. Besides the working node, two agents stand
 * for nodes without a usable CRIU (none, and one too old). Each test gets a namespace of its own, and
 * the workloads it {@link #track}s are ended after it. Names are fresh for each test class: classes share one
 * API server.
 *
 * <p>Use: {@code @RegisterExtension static final InProcessCluster cluster = new InProcessCluster();}
 */
public final class InProcessCluster
    implements BeforeAllCallback, AfterAllCallback, BeforeEachCallback, AfterEachCallback {
  public static final Duration TIMEOUT = Duration.ofSeconds(60);
  /** The operator's wait before it tries a Checkpoint again whose storage was down (10 s outside tests). */
  public static final Duration OPERATOR_RETRY_BASE = Duration.ofSeconds(2);

  private String node;
  private Path dir;
  private KubernetesClient client;
  private S3Server s3;
  private InProcessStasis stasis;
  private String namespace;
  private final List<AutoCloseable> afterTest = new ArrayList<>();

  @Override
  public void beforeAll(ExtensionContext context) throws Exception {
    node = "it-" + UUID.randomUUID().toString().substring(0, 6);
    dir = Files.createTempDirectory("stasis-" + context.getRequiredTestClass().getSimpleName() + "-");
    client = TestControlPlane.admin();
    s3 = S3Server.start();
    s3.createBucket("checkpoints");
    createS3Storage(s3Storage(), s3.endpoint(), "checkpoints");
    TestStorage.filesystem(fsStorage(), fsRoot()).create(client);
    Path oldCriu = dir.resolve("old-criu");
    Files.writeString(oldCriu, "#!/bin/sh\necho 'Version: 3.17.1'\n");
    oldCriu.toFile().setExecutable(true);
    start();
    await().atMost(TIMEOUT).until(() -> Stream.of(node(), noCriuNode(), oldCriuNode())
        .allMatch(n -> client.resources(NodeProfile.class).withName(n).get() != null));
    await().atMost(TIMEOUT).until(() -> available(s3Storage()) && available(fsStorage()));
  }

  @Override
  public void afterAll(ExtensionContext context) throws Exception {
    try {
      if (stasis != null) stasis.close();
      if (s3 != null) s3.close();
    } finally {
      Folders.deleteRecursively(dir);
    }
  }

  @Override
  public void beforeEach(ExtensionContext context) throws Exception {
    namespace = TestControlPlane.newNamespace("ckpt");
  }

  @Override
  public void afterEach(ExtensionContext context) throws Exception {
    try {
      for (int i = afterTest.size() - 1; i >= 0; i--) {
        afterTest.get(i).close();
      }
    } finally {
      afterTest.clear();
    }
  }

  /** Starts the operator and the agents; after {@link #stop()}, a restart of both. */
  public void start() {
    stasis = InProcessStasis.on(client)
        .operatorRetries(RetryPolicy.withBase(OPERATOR_RETRY_BASE))
        .agent(node(), dir.resolve("work"), Main.criuPath(null))
        .agent(noCriuNode(), dir.resolve("work-nocriu"), dir.resolve("no-such-criu"))
        .agent(oldCriuNode(), dir.resolve("work-oldcriu"), dir.resolve("old-criu"))
        .withMetricsServer()
        .start();
  }

  /** Stops the operator and the agents the way SIGTERM does. */
  public void stop() {
    stasis.close();
  }

  /** The node whose agent runs the machine's CRIU. */
  public String node() {
    return node;
  }

  /** A node whose agent finds no CRIU. */
  public String noCriuNode() {
    return node + "-nocriu";
  }

  /** A node whose agent has a CRIU too old to use (3.17.1). */
  public String oldCriuNode() {
    return node + "-oldcriu";
  }

  public String s3Storage() {
    return "s3-" + node.substring(3);
  }

  public String fsStorage() {
    return "fs-" + node.substring(3);
  }

  /** Where the filesystem storage keeps its archives. */
  public Path fsRoot() {
    return dir.resolve("fs-storage");
  }

  /** A folder of this test class, deleted after it. */
  public Path dir() {
    return dir;
  }

  public KubernetesClient client() {
    return client;
  }

  public S3Server s3() {
    return s3;
  }

  public int metricsPort() {
    return stasis.metricsPort();
  }

  /** The namespace of the running test. */
  public String namespace() {
    return namespace;
  }

  /** Ended after the running test. */
  public Workloads.Workload track(Workloads.Workload workload) {
    afterTest.add(workload);
    return workload;
  }

  /** Done after the running test, such as ending a tree it restored; the last registered first. */
  public void afterTest(AutoCloseable step) {
    afterTest.add(step);
  }

  public Checkpoint createCheckpoint(String name, long pid, String storage, CheckpointOptions options) {
    return createCheckpoint(name, node(), pid, storage, options);
  }

  public Checkpoint createCheckpoint(String name, String node, long pid, String storage, CheckpointOptions options) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    CheckpointSpec spec = new CheckpointSpec(CheckpointTarget.process(node, (int) pid));
    spec.storage = storage;
    spec.options = options;
    c.setSpec(spec);
    return client.resource(c).create();
  }

  public Restore createRestore(String name, String checkpoint) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    return client.resource(r).create();
  }

  public Checkpoint checkpoint(String name) {
    return client.resources(Checkpoint.class).inNamespace(namespace).withName(name).get();
  }

  public Restore restore(String name) {
    return client.resources(Restore.class).inNamespace(namespace).withName(name).get();
  }

  /** Waits until {@code c} is Completed or Failed, and asserts that it ended in {@code phase}. */
  public Checkpoint awaitCheckpoint(Checkpoint c, CheckpointPhase phase) {
    String name = c.getMetadata().getName();
    await().atMost(TIMEOUT).until(() -> {
      Checkpoint now = checkpoint(name);
      return now.getStatus() != null && now.getStatus().phase != null && now.getStatus().phase.isTerminal();
    });
    Checkpoint now = checkpoint(name);
    assertThat(now.getStatus().phase).as("%s: %s %s\n%s", name, now.getStatus().reason, now.getStatus().message,
        now.getStatus().criuLogTail).isEqualTo(phase);
    return now;
  }

  /** Waits until {@code r} is Completed or Failed, and asserts that it ended in {@code phase}. */
  public Restore awaitRestore(Restore r, RestorePhase phase) {
    String name = r.getMetadata().getName();
    await().atMost(TIMEOUT).until(() -> {
      Restore now = restore(name);
      return now.getStatus() != null && now.getStatus().phase != null && now.getStatus().phase.isTerminal();
    });
    Restore now = restore(name);
    assertThat(now.getStatus().phase).as("%s: %s %s\n%s", name, now.getStatus().reason, now.getStatus().message,
        now.getStatus().criuLogTail).isEqualTo(phase);
    return now;
  }

  /** The failure's reason and message, and a Warning Event of that reason in the test's namespace. */
  public void assertFailure(String reason, String message, String expectedReason, String expectedText) {
    assertThat(reason).isEqualTo(expectedReason);
    assertThat(message).contains(expectedText);
    await().atMost(TIMEOUT).until(() -> client.v1().events().inNamespace(namespace).list().getItems().stream()
        .map(Event::getReason).toList().contains(expectedReason));
  }

  /** The storage as the agents open it, to look at or alter what they stored. */
  public ObjectStore openStorage(String storage) throws IOException {
    StorageBinding binding = new StorageBinding(client);
    return binding.open(binding.find(storage));
  }

  /** Where the manifest of a checkpoint stored in {@link #fsStorage} is. */
  public Path manifestPath(Checkpoint c) {
    return fsRoot().resolve(namespace).resolve(c.getMetadata().getName() + "-" + c.getMetadata().getUid())
        .resolve("manifest.json");
  }

  /** The manifest of a checkpoint stored in {@link #fsStorage}. */
  public Manifest manifestOf(Checkpoint c) throws IOException {
    return Manifest.fromJson(Files.readAllBytes(manifestPath(c)));
  }

  /**
   * Records {@code manifestJson} as the manifest of the Checkpoint's archive (of {@code container},
   * or its process archive when null) in its status, as the agent that took it does when it stores
   * a manifest: for tests of what a manifest says (a newer format, a CPU no node has), not of
   * tampering, which this is not.
   */
  public void recordManifest(Checkpoint c, String container, byte[] manifestJson) {
    String digest = Sha256.hexOf(manifestJson);
    client.resources(Checkpoint.class).inNamespace(c.getMetadata().getNamespace()).withName(c.getMetadata().getName())
        .editStatus(now -> {
          (container == null ? now.getStatus().archive : now.getStatus().containers.stream()
              .filter(s -> s.name.equals(container)).findFirst().orElseThrow().archive).manifestSha256 = digest;
          return now;
        });
  }

  public boolean available(String storage) {
    return TestStorage.isAvailable(client, storage);
  }

  /** A storage in {@code bucket} of this cluster's S3 server, reached at {@code endpoint}. */
  public void createS3Storage(String name, String endpoint, String bucket) {
    TestStorage.s3(name, endpoint, bucket).credentials(s3).with(spec -> spec.s3.prefix = "stasis").create(client);
  }
}
