package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.FileSystemStorage;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.S3Storage;
import dev.stasis.api.SecretReference;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Sha256;
import dev.stasis.cli.Main;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.kube.StorageBinding;
import dev.stasis.storage.ObjectStore;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Real parts for end-to-end tests: the API server (scripts/control-plane.sh), the operator and
 * agents in this JVM, real CRIU, an S3 server (s3proxy) and a filesystem storage. Besides the
 * working node, two agents stand for nodes without a usable CRIU.
 */
abstract class EndToEndTest {
  static final Duration TIMEOUT = Duration.ofSeconds(60);
  // Fresh names for each test class: classes share one API server.
  static String NODE;
  static String NO_CRIU_NODE;
  static String OLD_CRIU_NODE;
  static String s3Storage;
  static String fsStorage;
  static Path fsRoot;

  static KubernetesClient client;
  static S3Server s3;
  static InProcessStasis stasis;
  /** The operator's wait before it tries a Checkpoint again whose storage was down (10 s outside tests). */
  static final Duration OPERATOR_RETRY_BASE = Duration.ofSeconds(2);

  @TempDir static Path shared;
  String namespace;
  final List<AutoCloseable> cleanup = new ArrayList<>();

  @BeforeAll
  static void startStasis() throws Exception {
    NODE = "it-" + UUID.randomUUID().toString().substring(0, 6);
    NO_CRIU_NODE = NODE + "-nocriu";
    OLD_CRIU_NODE = NODE + "-oldcriu";
    client = TestControlPlane.admin();
    s3 = S3Server.start();
    s3.createBucket("checkpoints");
    String suffix = NODE.substring(3);
    s3Storage = "s3-" + suffix;
    fsStorage = "fs-" + suffix;
    fsRoot = shared.resolve("fs-storage");
    createS3Storage(s3Storage, s3.endpoint(), "checkpoints");
    createFileSystemStorage(fsStorage, fsRoot);
    Path oldCriu = shared.resolve("old-criu");
    Files.writeString(oldCriu, "#!/bin/sh\necho 'Version: 3.17.1'\n");
    oldCriu.toFile().setExecutable(true);
    stasis = startInProcess();
    await().atMost(TIMEOUT).until(() -> Stream.of(NODE, NO_CRIU_NODE, OLD_CRIU_NODE)
        .allMatch(n -> client.resources(NodeProfile.class).withName(n).get() != null));
    await().atMost(TIMEOUT).until(() -> available(s3Storage) && available(fsStorage));
  }

  /** The operator and the agents; a second call after closing the first is a restart of both. */
  static InProcessStasis startInProcess() {
    return InProcessStasis.on(client)
        .operatorRetries(RetryPolicy.withBase(OPERATOR_RETRY_BASE))
        .agent(NODE, shared.resolve("work"), Main.criuPath(null))
        .agent(NO_CRIU_NODE, shared.resolve("work-nocriu"), shared.resolve("no-such-criu"))
        .agent(OLD_CRIU_NODE, shared.resolve("work-oldcriu"), shared.resolve("old-criu"))
        .withMetricsServer()
        .start();
  }

  @AfterAll
  static void stopStasis() throws Exception {
    if (stasis != null) stasis.close();
    if (s3 != null) s3.close();
  }

  @BeforeEach
  void newNamespace() throws Exception {
    namespace = TestControlPlane.newNamespace("ckpt");
  }

  @AfterEach
  void stopWorkloads() throws Exception {
    for (AutoCloseable c : cleanup) {
      c.close();
    }
  }


  Workloads.Workload track(Workloads.Workload w) {
    cleanup.add(w);
    return w;
  }

  Checkpoint createCheckpoint(String name, long pid, String storage, CheckpointOptions options) {
    return createCheckpoint(name, NODE, pid, storage, options);
  }

  Checkpoint createCheckpoint(String name, String node, long pid, String storage, CheckpointOptions options) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    CheckpointSpec spec = new CheckpointSpec(CheckpointTarget.process(node, (int) pid));
    spec.storage = storage;
    spec.options = options;
    c.setSpec(spec);
    return client.resource(c).create();
  }

  Restore createRestore(String name, String checkpoint) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    return client.resource(r).create();
  }

  Checkpoint checkpoint(String name) {
    return client.resources(Checkpoint.class).inNamespace(namespace).withName(name).get();
  }

  Restore restore(String name) {
    return client.resources(Restore.class).inNamespace(namespace).withName(name).get();
  }

  Checkpoint awaitCheckpoint(Checkpoint c, CheckpointPhase phase) {
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

  Restore awaitRestore(Restore r, RestorePhase phase) {
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

  /**
   * The counter rewrites its file every 100 ms (open, truncate, write), so a read may catch it
   * empty: read again for up to a second. -1 when there is no number at all.
   */
  /** The failure's reason and message, and a Warning Event of that reason in the test's namespace. */
  void assertFailure(String reason, String message, String expectedReason, String expectedText) {
    assertThat(reason).isEqualTo(expectedReason);
    assertThat(message).contains(expectedText);
    await().atMost(TIMEOUT).until(() -> client.v1().events().inNamespace(namespace).list().getItems().stream()
        .map(Event::getReason).toList().contains(expectedReason));
  }

  static long count(Path file) {
    for (int attempt = 0; attempt < 50; attempt++) {
      try {
        String text = Files.readString(file).trim();
        if (!text.isEmpty()) {
          return Long.parseLong(text);
        }
      } catch (IOException | NumberFormatException e) {
        // not there yet, or caught mid-rewrite
      }
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return -1;
      }
    }
    return -1;
  }

  static long lines(Path file) {
    try (Stream<String> lines = Files.lines(file)) {
      return lines.count();
    } catch (IOException e) {
      return 0;
    }
  }

  /** Where the manifest of a checkpoint stored in {@link #fsStorage} is. */
  Path manifestPath(Checkpoint c) {
    return fsRoot.resolve(namespace).resolve(c.getMetadata().getName() + "-" + c.getMetadata().getUid()).resolve("manifest.json");
  }

  Manifest manifestOf(Checkpoint c) throws Exception {
    return Manifest.fromJson(Files.readAllBytes(manifestPath(c)));
  }

  /** The storage as the agents open it, to look at or alter what they stored. */
  static ObjectStore openStorage(String storage) throws IOException {
    StorageBinding binding = new StorageBinding(client);
    return binding.open(binding.find(storage));
  }

  /**
   * Records {@code manifestJson} as the manifest of the Checkpoint's archive (of {@code container},
   * or its process archive when null) in its status, as the agent that took it does when it stores
   * a manifest: for tests of what a manifest says (a newer format, a CPU no node has), not of
   * tampering, which this is not.
   */
  static void recordManifest(Checkpoint c, String container, byte[] manifestJson) {
    String digest = Sha256.hex(Sha256.newDigest().digest(manifestJson));
    client.resources(Checkpoint.class).inNamespace(c.getMetadata().getNamespace()).withName(c.getMetadata().getName())
        .editStatus(now -> {
          (container == null ? now.getStatus().archive : now.getStatus().containers.stream()
              .filter(s -> s.name.equals(container)).findFirst().orElseThrow().archive).manifestSha256 = digest;
          return now;
        });
  }

  static boolean available(String storage) {
    CheckpointStorage s = client.resources(CheckpointStorage.class).withName(storage).get();
    return s != null && s.getStatus() != null && "Available".equals(s.getStatus().phase);
  }

  static void createS3Storage(String name, String endpoint, String bucket) {
    String secretNamespace = "default";
    client.resource(new SecretBuilder().withNewMetadata().withName(name).withNamespace(secretNamespace).endMetadata()
        .addToStringData(StorageBinding.ACCESS_KEY_ID, s3.accessKey())
        .addToStringData(StorageBinding.SECRET_ACCESS_KEY, s3.secretKey())
        .build()).create();
    CheckpointStorage storage = new CheckpointStorage();
    storage.setMetadata(new ObjectMetaBuilder().withName(name).build());
    storage.setSpec(new CheckpointStorageSpec());
    storage.getSpec().s3 = new S3Storage();
    storage.getSpec().s3.endpoint = endpoint;
    storage.getSpec().s3.bucket = bucket;
    storage.getSpec().s3.prefix = "stasis";
    storage.getSpec().s3.pathStyle = true;
    storage.getSpec().s3.credentialsSecret = new SecretReference(name, secretNamespace);
    client.resource(storage).create();
  }

  static void createFileSystemStorage(String name, Path root) {
    CheckpointStorage storage = new CheckpointStorage();
    storage.setMetadata(new ObjectMetaBuilder().withName(name).build());
    storage.setSpec(new CheckpointStorageSpec());
    storage.getSpec().filesystem = new FileSystemStorage(root.toString());
    client.resource(storage).create();
  }
}
