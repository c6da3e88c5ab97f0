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
import dev.stasis.cli.Main;
import dev.stasis.kube.StorageBinding;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
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
 * The whole path on real parts: the API server, the operator and an agent, real CRIU on real
 * processes in their own PID namespaces, and both storage backends (S3 via s3proxy, filesystem).
 */
class ProcessCheckpointIT {
  static final Duration TIMEOUT = Duration.ofSeconds(60);
  static final String NODE = "it-" + UUID.randomUUID().toString().substring(0, 6);
  static String s3Storage;
  static String fsStorage;
  static Path fsRoot;

  static KubernetesClient client;
  static S3Server s3;
  static InProcessStasis stasis;

  @TempDir static Path shared;
  String namespace;
  final List<AutoCloseable> cleanup = new ArrayList<>();

  @BeforeAll
  static void startStasis() throws Exception {
    client = TestControlPlane.admin();
    s3 = S3Server.start();
    s3.createBucket("checkpoints");
    String suffix = NODE.substring(3);
    s3Storage = "s3-" + suffix;
    fsStorage = "fs-" + suffix;
    fsRoot = shared.resolve("fs-storage");
    createS3Storage(s3Storage, s3.endpoint(), "checkpoints");
    createFileSystemStorage(fsStorage, fsRoot);
    stasis = InProcessStasis.on(client).agent(NODE, shared.resolve("work"), Main.criuPath(null)).start();
    await().atMost(TIMEOUT).until(() -> client.resources(NodeProfile.class).withName(NODE).get() != null);
    await().atMost(TIMEOUT).until(() -> available(s3Storage) && available(fsStorage));
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

  @ParameterizedTest(name = "storage {0}")
  @ValueSource(strings = {"s3", "filesystem"})
  void counterCarriesOnFromTheCheckpointedValue(String backend) throws Exception {
    String storage = backend.equals("s3") ? s3Storage : fsStorage;
    Path out = shared.resolve(backend + "-count.txt");
    var counter = track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> count(out) >= 5);

    long before = count(out);
    Checkpoint done = awaitCheckpoint(createCheckpoint("counter-" + backend, counter.pid(), storage, null),
        CheckpointPhase.Completed);
    long after = count(out);
    assertThat(done.getStatus().archive.sha256).hasSize(64);
    assertThat(done.getStatus().archive.storedBytes).isPositive();
    assertThat(done.getStatus().archive.uri).startsWith(backend.equals("s3") ? "s3://checkpoints/" : "file://");
    assertThat(done.getStatus().stats.frozenTimeMicros).isPositive();
    assertThat(done.getStatus().stats.pagesWritten).isPositive();
    assertThat(done.getStatus().conditions).anyMatch(c -> c.getType().equals("Complete") && c.getStatus().equals("True"));
    assertThat(Workloads.isAlive(counter.pid())).as("leaveRunning defaults to true").isTrue();

    Thread.sleep(1500); // let the original run on well past the checkpoint
    counter.close();
    long killedAt = count(out);

    Restore restored = awaitRestore(createRestore("counter-" + backend, "counter-" + backend), RestorePhase.Completed);
    int pid = restored.getStatus().restoredPid;
    cleanup.add(() -> Workloads.kill(pid));
    assertThat(restored.getStatus().node).isEqualTo(NODE);
    assertThat(restored.getStatus().processState).isEqualTo("Running");

    // The restored counter rewrites the file from the value it had at the checkpoint, not 0 and not killedAt.
    await().atMost(TIMEOUT).until(() -> count(out) < killedAt);
    long resumed = count(out);
    assertThat(resumed).isBetween(before, after + 3);
    await().atMost(TIMEOUT).until(() -> count(out) > resumed + 3);

    Workloads.kill(pid);
    await().atMost(TIMEOUT).until(() -> "Exited".equals(restore("counter-" + backend).getStatus().processState));
    assertThat(Workloads.isAlive(pid)).as("no zombie is left").isFalse();
  }

  @Test
  void deletingACheckpointDeletesItsArchive() throws Exception {
    var counter = track(Workloads.startInPidNamespace("counter", shared.resolve("del.txt").toString()));
    Checkpoint done = awaitCheckpoint(createCheckpoint("to-delete", counter.pid(), fsStorage, null), CheckpointPhase.Completed);
    Path folder = fsRoot.resolve(namespace).resolve("to-delete-" + done.getMetadata().getUid());
    assertThat(folder.resolve("manifest.json")).exists();
    client.resource(done).delete();
    await().atMost(TIMEOUT).until(() -> !Files.exists(folder.resolve("manifest.json")));
    await().atMost(TIMEOUT).until(() -> checkpoint("to-delete") == null);
  }

  @Test
  void processTreeWithChildrenResumesWhole() throws Exception {
    Path dir = Files.createDirectories(shared.resolve("tree-" + namespace));
    var tree = track(Workloads.startInPidNamespace("forktree", dir.toString(), "3"));
    List<Path> files = List.of(dir.resolve("count.0"), dir.resolve("count.1"), dir.resolve("count.2"), dir.resolve("count.3"));
    await().atMost(TIMEOUT).until(() -> files.stream().allMatch(f -> count(f) >= 3));
    awaitCheckpoint(createCheckpoint("tree", tree.pid(), fsStorage, null), CheckpointPhase.Completed);
    tree.close();
    Thread.sleep(300);
    long[] frozen = files.stream().mapToLong(ProcessCheckpointIT::count).toArray();

    Restore restored = awaitRestore(createRestore("tree", "tree"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    for (int i = 0; i < files.size(); i++) {
      Path f = files.get(i);
      long was = frozen[i];
      await("process " + i + " counts again").atMost(TIMEOUT).until(() -> count(f) != was);
    }
  }

  @Test
  void processWithAnOpenFileKeepsAppending() throws Exception {
    Path log = shared.resolve("open-" + namespace + ".log");
    var writer = track(Workloads.startInPidNamespace("openfile", log.toString()));
    await().atMost(TIMEOUT).until(() -> lines(log) >= 3);
    awaitCheckpoint(createCheckpoint("openfile", writer.pid(), s3Storage, null), CheckpointPhase.Completed);
    writer.close();
    Thread.sleep(300);
    long linesAtKill = lines(log);

    Restore restored = awaitRestore(createRestore("openfile", "openfile"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> lines(log) > linesAtKill + 3);
  }

  @Test
  void leaveRunningFalseEndsTheProcessOnlyAfterTheArchiveIsStored() throws Exception {
    Path out = shared.resolve("stop-" + namespace + ".txt");
    var counter = track(Workloads.startInPidNamespace("counter", out.toString()));
    await().atMost(TIMEOUT).until(() -> count(out) >= 3);
    var options = new CheckpointOptions();
    options.leaveRunning = false;
    Checkpoint done = awaitCheckpoint(createCheckpoint("stop", counter.pid(), s3Storage, options), CheckpointPhase.Completed);
    assertThat(done.getStatus().archive.sha256).hasSize(64);
    await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(counter.pid()));
    long stoppedAt = count(out);

    Restore restored = awaitRestore(createRestore("stop", "stop"), RestorePhase.Completed);
    cleanup.add(() -> Workloads.kill(restored.getStatus().restoredPid));
    await().atMost(TIMEOUT).until(() -> count(out) > stoppedAt + 2);
  }

  // --- helpers ---

  Workloads.Workload track(Workloads.Workload w) {
    cleanup.add(w);
    return w;
  }

  Checkpoint createCheckpoint(String name, long pid, String storage, CheckpointOptions options) {
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    CheckpointSpec spec = new CheckpointSpec(CheckpointTarget.process(NODE, (int) pid));
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

  static long count(Path file) {
    try {
      String text = Files.readString(file).trim();
      return text.isEmpty() ? -1 : Long.parseLong(text);
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
  }

  static long lines(Path file) {
    try (Stream<String> lines = Files.lines(file)) {
      return lines.count();
    } catch (IOException e) {
      return 0;
    }
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
