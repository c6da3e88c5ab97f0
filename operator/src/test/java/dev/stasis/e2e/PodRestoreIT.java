package dev.stasis.e2e;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.agent.RuntimeSettings;
import dev.stasis.agent.work.NodeWorkQueue;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointRef;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointScheduleStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.ProgressStatus;
import dev.stasis.api.RegistrySpec;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.RestorePlacement;
import dev.stasis.api.RestoreSpec;
import dev.stasis.api.ScheduleRef;
import dev.stasis.api.SecretReference;
import dev.stasis.archive.Manifest;
import dev.stasis.cli.Main;
import dev.stasis.criu.Criu;
import dev.stasis.kube.Labels;
import dev.stasis.kube.RetryPolicy;
import dev.stasis.operator.schedule.ScheduleCheckpoints;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.ProgressSeen;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.PodCheckpoints;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.RegistryServer;
import dev.stasis.testing.TestCa;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestingKubelet;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Collectors;
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
 * Restores of pod checkpoints where the real node (PodRestoreOnNodeIT) is not needed or cannot
 * go: registries that refuse or do not answer (a real docker-registry with TLS and htpasswd), a
 * node without room for the images, storages without a registry, and schedules of several pods.
 * The checkpoint is taken through the kubelet double with real CRIU; the operator creates the Pod
 * on the real API server, and the kubelet double pulls the image's manifest from the registry
 * before it reports the pod Running.
 */
class PodRestoreIT {
  static final Duration TIMEOUT = Duration.ofSeconds(60);
  static final String NODE = "rst-" + UUID.randomUUID().toString().substring(0, 6);
  static final String SMALL_NODE = NODE + "-small";
  static final String SYSTEM = "stasis-system";

  @TempDir static Path dir;
  static KubernetesClient admin;
  static TestingKubelet kubelet;
  static RegistryServer registry;
  static InProcessStasis stasis;
  /** The agents' wait before retrying a transiently failed push (10 s outside tests). */
  static final Duration RETRY_BASE = Duration.ofSeconds(2);
  /** Memory of the large pod's container: a stored archive of about this size, which does not compress. */
  static final int BIG_MIB = 384;
  /** The link from S3 while the large pod's archive is pushed: ~12 s for it, about six progress writes. */
  static final long BIG_LINK_BYTES_PER_SECOND = 32L << 20;
  static Path smallDisk;
  static String storage;

  String namespace;
  final List<AutoCloseable> cleanup = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    admin = TestControlPlane.admin();
    new Kubectl(TestControlPlane.kubeconfig()).run("apply", "-k", "config/rbac").ok();
    TestCa ca = TestCa.create(dir.resolve("ca"), "cluster");
    kubelet = TestingKubelet.start(NODE, admin, Main.criuPath(null), ca.issue("kubelet"), dir.resolve(NODE));
    registry = RegistryServer.start(dir.resolve("registry"), ca, "stasis", "push-secret");
    // A node whose image store is a 64 KiB tmpfs: no checkpoint image fits there.
    smallDisk = Files.createDirectories(dir.resolve("small-disk"));
    run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", smallDisk.toString());
    Path token = Files.writeString(dir.resolve("agent.token"), admin.serviceAccounts().inNamespace(SYSTEM)
        .withName("stasis-agent").tokenRequest(new TokenRequestBuilder().withNewSpec().withExpirationSeconds(3600L)
            .endSpec().build()).getStatus().getToken());
    stasis = InProcessStasis.on(admin)
        .agent(agent(NODE, kubelet.url().toString(), token, ca, kubelet.checkpointDir(), dir.resolve("images")), admin)
        .agent(agent(SMALL_NODE, "https://127.0.0.1:1", token, ca, dir.resolve("none"), smallDisk), admin)
        .start();
    await().atMost(TIMEOUT).until(() -> Stream.of(NODE, SMALL_NODE)
        .allMatch(n -> admin.resources(NodeProfile.class).withName(n).get() != null));

    secret("registry-" + NODE, Map.of(RegistrySpec.USERNAME, "stasis", RegistrySpec.PASSWORD, "push-secret"));
    secret("registry-ca-" + NODE, Map.of(RegistrySpec.CA_CERTIFICATE, Files.readString(ca.certificate())));
    storage = storage("good", registry.url("stasis"), "registry-" + NODE);
  }

  static AgentConfig agent(String node, String kubeletUrl, Path token, TestCa ca, Path checkpoints, Path images) {
    var settings = new KubeletSettings(java.net.URI.create(kubeletUrl), token, ca.certificate(), false, checkpoints,
        Duration.ofSeconds(2));
    // The kubelet double runs no runtime: the test states that these nodes restore from checkpoint images.
    var runtime = new RuntimeSettings(RuntimeSettings.CONTAINERD_CONFIG, RuntimeSettings.CRIO_SOCKET,
        RuntimeSettings.Restore.ENABLED, images);
    return new AgentConfig(node, dir.resolve(node).resolve("work"), new Criu(Main.criuPath(null), Map.of()), Set.of(),
        settings).withWorkLimits(NodeWorkQueue.DEFAULT_SLOTS, RetryPolicy.withBase(RETRY_BASE)).withRuntime(runtime);
  }

  @AfterAll
  static void stop() throws Exception {
    if (stasis != null) stasis.close();
    if (kubelet != null) kubelet.close();
    if (registry != null) registry.close();
    if (smallDisk != null) run("umount", smallDisk.toString());
  }

  @BeforeEach
  void newNamespace() throws Exception {
    namespace = TestControlPlane.newNamespace("podrst");
  }

  @AfterEach
  void stopWorkloads() throws Exception {
    for (AutoCloseable c : cleanup) {
      c.close();
    }
  }

  /**
   * The operator creates restored pods under its own rights, from the pod spec in the manifest. Who
   * can write the bucket rewrites that spec to mount the node's root filesystem: the manifest is not
   * the one the Checkpoint's status recorded, so no image is pushed and no pod is created.
   */
  @Test
  void aPodSpecRewrittenInTheBucketIsNeverCreated() throws Exception {
    Checkpoint checkpoint = checkpoint("web", storage);
    Path manifestFile = dir.resolve("storage").resolve(namespace).resolve("web-" + checkpoint.getMetadata().getUid())
        .resolve("containers/app/manifest.json");
    Manifest forged = Manifest.fromJson(Files.readAllBytes(manifestFile));
    forged.source.podSpec = Map.of("containers", List.of(Map.of("name", "app", "image", "example.org/counter:1",
            "securityContext", Map.of("privileged", true),
            "volumeMounts", List.of(Map.of("name", "host", "mountPath", "/host")))),
        "volumes", List.of(Map.of("name", "host", "hostPath", Map.of("path", "/"))));
    Files.write(manifestFile, forged.toJson());

    Restore failed = awaitRestore(restore("web", "web", r -> {}), r -> r.getStatus() != null
        && r.getStatus().phase != null && r.getStatus().phase.isTerminal());

    assertThat(failed.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(failed.getStatus().reason).as(failed.getStatus().message).isEqualTo("ManifestTampered");
    assertThat(failed.getStatus().message).contains("is not the one stored when the checkpoint was taken");
    await().atMost(TIMEOUT).until(() -> events("web").stream()
        .anyMatch(e -> e.getReason().equals("ManifestTampered") && e.getType().equals("Warning")));
    assertThat(admin.pods().inNamespace(namespace).list().getItems()).extracting(p -> p.getMetadata().getName())
        .as("only the original pod").containsExactly("web");
    assertThat(registry.get("/v2/stasis/" + namespace + "/tags/list", null).statusCode())
        .as("no image pushed to the namespace's repository").isEqualTo(404);
  }

  @Test
  void aRegistryThatRefusesTheCredentials() throws Exception {
    secret("bad-registry-" + namespace, Map.of(RegistrySpec.USERNAME, "stasis", RegistrySpec.PASSWORD, "wrong"));
    checkpoint("web", storage("badcreds-" + namespace, registry.url("stasis"), "bad-registry-" + namespace));
    Restore failed = awaitRestore(restore("web", "web", r -> {}), r -> r.getStatus() != null && r.getStatus().phase != null
        && r.getStatus().phase.isTerminal());
    assertThat(failed.getStatus().reason).as(failed.getStatus().message).isEqualTo("RegistryUnauthorized");
    assertThat(failed.getStatus().message).contains("spec.registry.credentialsSecret");
    await().atMost(TIMEOUT).until(() -> events("web").stream()
        .anyMatch(e -> e.getReason().equals("RegistryUnauthorized") && e.getType().equals("Warning")));
    assertThat(admin.pods().inNamespace(namespace).list().getItems()).extracting(p -> p.getMetadata().getName())
        .containsExactly("web");
  }

  @Test
  void aRegistryNobodyListensOn() throws Exception {
    int port;
    try (var socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    checkpoint("web", storage("down-" + namespace, "https://127.0.0.1:" + port + "/stasis", "registry-" + NODE));
    Restore failed = awaitRestore(restore("web", "web", r -> r.backoffLimit = 1), r -> r.getStatus() != null
        && r.getStatus().phase != null && r.getStatus().phase.isTerminal());
    assertThat(failed.getStatus().reason).as(failed.getStatus().message).isEqualTo("RegistryUnreachable");
    assertThat(failed.getStatus().message).startsWith("failed after 2 attempts (spec.backoffLimit 1 reached)")
        .contains("cannot reach the registry https://127.0.0.1:" + port);
    assertThat(failed.getStatus().attempts).isEqualTo(2);
    await().atMost(TIMEOUT).until(() -> events("web").stream().anyMatch(e -> e.getReason().equals("Retrying")
        && e.getMessage().startsWith("attempt 1/2 failed (RegistryUnreachable)")));
  }

  @Test
  void aNodeWithoutRoomForTheImages() throws Exception {
    checkpoint("web", storage);
    Restore failed = awaitRestore(restore("web", "web", r -> {
      r.placement = new RestorePlacement();
      r.placement.nodeName = SMALL_NODE;
    }), r -> r.getStatus() != null && r.getStatus().phase != null && r.getStatus().phase.isTerminal());
    assertThat(failed.getStatus().node).isEqualTo(SMALL_NODE);
    assertThat(failed.getStatus().reason).as(failed.getStatus().message).isEqualTo("InsufficientSpace");
    assertThat(failed.getStatus().message).contains("bytes free in " + smallDisk);
    assertThat(admin.pods().inNamespace(namespace).list().getItems()).hasSize(1);
  }

  @Test
  void aStorageWithoutRegistryCannotRestorePods() throws Exception {
    checkpoint("web", storage("noreg-" + namespace, null, null));
    Restore failed = awaitRestore(restore("web", "web", r -> {}), r -> r.getStatus() != null && r.getStatus().phase != null
        && r.getStatus().phase.isTerminal());
    assertThat(failed.getStatus().reason).isEqualTo("RegistryNotConfigured");
  }

  @Test
  void aSelectorScheduleCheckpointsEachSelectedPodAndAScheduleRefRestoresThePodAskedFor() throws Exception {
    runPod("sim-0", "sim");
    runPod("sim-1", "sim");
    runPod("other", "other");
    CheckpointSchedule schedule = new CheckpointSchedule();
    schedule.setMetadata(new ObjectMetaBuilder().withName("sim").withNamespace(namespace).build());
    schedule.setSpec(new CheckpointScheduleSpec());
    schedule.getSpec().schedule = "@every 3s";
    schedule.getSpec().selector = new LabelSelector(null, Map.of("app", "sim"));
    schedule.getSpec().containers = List.of("app"); // the sidecar has no process to dump
    schedule.getSpec().storage = storage;
    schedule.getSpec().retention = new CheckpointScheduleSpec.Retention();
    schedule.getSpec().retention.keepLast = 2;
    admin.resource(schedule).create();
    var scheduleResource = admin.resources(CheckpointSchedule.class).inNamespace(namespace).withName("sim");

    // Runs of 3 s: one Checkpoint of each selected pod per run, each Completed; retention keeps two per pod.
    await().atMost(Duration.ofSeconds(120)).until(() -> scheduleResource.get().getStatus() != null
        && scheduleResource.get().getStatus().succeeded >= 6);
    scheduleResource.edit(s -> {
      s.getSpec().suspend = true;
      return s;
    });
    // Until retention's deletions are through: a Checkpoint it deleted stays, marked, while its archive goes.
    await().atMost(TIMEOUT).until(() -> scheduleResource.get().getStatus().active.isEmpty()
        && scheduleOf("sim").size() == 4);
    CheckpointScheduleStatus status = scheduleResource.get().getStatus();
    assertThat(status.failed).isZero();
    assertThat(status.selectedPods).isEqualTo(2);
    List<Checkpoint> kept = scheduleOf("sim");
    assertThat(kept).extracting(c -> c.getSpec().target.pod.name)
        .as("two of each selected pod, none of the other").containsExactlyInAnyOrder("sim-0", "sim-0", "sim-1", "sim-1");
    for (Checkpoint c : kept) {
      String pod = c.getSpec().target.pod.name;
      assertThat(c.getStatus().phase).isEqualTo(CheckpointPhase.Completed);
      assertThat(c.getStatus().containers).extracting(container -> container.name).containsExactly("app");
      assertThat(c.getMetadata().getLabels()).containsEntry(Labels.POD, pod).containsEntry(Labels.SCHEDULE, "sim");
      String time = c.getMetadata().getAnnotations().get(ScheduleCheckpoints.SCHEDULED_TIME);
      assertThat(c.getMetadata().getName()).isEqualTo("sim-" + time.replaceAll("[-:TZ]", "") + "-" + pod);
    }
    assertThat(admin.resources(Checkpoint.class).inNamespace(namespace).list().getItems())
        .noneMatch(c -> c.getSpec().target.pod.name.equals("other"));
    // the archives of the checkpoints retention deleted are gone; the kept ones' stay (the namespace's
    // packs, which no one checkpoint owns, are the collection's: not counted)
    Path stored = dir.resolve("storage").resolve(namespace);
    await().atMost(TIMEOUT).until(() -> {
      try (var files = Files.walk(stored)) {
        return files.filter(Files::isRegularFile).map(f -> stored.relativize(f).getName(0).toString())
            .filter(prefix -> !prefix.startsWith("."))
            .collect(Collectors.toSet()).equals(kept.stream()
                .map(c -> c.getMetadata().getName() + "-" + c.getMetadata().getUid()).collect(Collectors.toSet()));
      }
    });

    // A Restore of the schedule must say which pod; with the pod, it takes that pod's newest checkpoint.
    Restore ambiguous = awaitRestore(restoreOfSchedule("which", new ScheduleRef("sim")),
        r -> r.getStatus() != null && r.getStatus().phase == RestorePhase.Failed);
    assertThat(ambiguous.getStatus().reason).isEqualTo("PodRequired");
    assertThat(ambiguous.getStatus().message).contains("several pods (sim-0, sim-1): set spec.scheduleRef.pod");
    Checkpoint newestOfSim1 = kept.stream().filter(c -> c.getSpec().target.pod.name.equals("sim-1"))
        .max(Comparator.comparing(c -> c.getStatus().completionTime)).orElseThrow();
    Restore restore = restoreOfSchedule("sim-1", new ScheduleRef("sim", "sim-1"));
    Restore created = awaitRestore(restore, r -> r.getStatus() != null && r.getStatus().restoredPod != null);
    assertThat(created.getStatus().checkpoint).as(created.getStatus().message).isEqualTo(newestOfSim1.getMetadata().getName());
    kubelet.startPod(namespace, created.getStatus().restoredPod, registry);
    Restore done = awaitRestore(restore, r -> r.getStatus().phase.isTerminal());
    assertThat(done.getStatus().phase).as(done.getStatus().message).isEqualTo(RestorePhase.Completed);
  }

  /**
   * A large pod checkpoint restored over a slowed link from S3: what {@code kubectl get rst -w} shows
   * moves forward at least three times, and ends at 100% once the pod runs. A whole archive streams
   * into the registry (Pushing, in bytes of the stored archive); a deduplicated one is Downloading while
   * its chunks come in and are put together into the tar, then Pushing the tar, on one count of bytes.
   */
  @ParameterizedTest(name = "deduplication {0}")
  @ValueSource(booleans = {false, true})
  void aLargePodRestoreShowsItsProgressMoving(boolean deduplication) throws Exception {
    Path count = dir.resolve(namespace + "-big.txt");
    var memhog = Workloads.startInPidNamespace("memhog", Integer.toString(BIG_MIB), "0", count.toString());
    cleanup.add(memhog);
    try (S3Server s3 = S3Server.start(); FaultInjectingProxy link = FaultInjectingProxy.to(s3.endpoint())) {
      s3.createBucket("progress");
      String slowStorage = (deduplication ? "slow-dedup-" : "slow-") + NODE;
      TestStorage.s3(slowStorage, link.endpoint(), "progress").credentials(s3)
          .with(spec -> {
            spec.registry = registry(registry.url("stasis"), "registry-" + NODE);
            spec.deduplication = deduplication;
          }).create(admin);
      await().atMost(TIMEOUT).until(() -> TestStorage.isAvailable(admin, slowStorage));
      await().atMost(TIMEOUT).until(() -> Workloads.count(count) >= 1); // its memory is written
      kubelet.runPod(new PodBuilder().withNewMetadata().withName("big").withNamespace(namespace).endMetadata()
          .withNewSpec().addNewContainer().withName("app").withImage("example.org/memhog:1").endContainer().endSpec()
          .build(), Map.of("app", memhog.pid()));
      Checkpoint checkpoint = PodCheckpoints.awaitPhase(admin, PodCheckpoints.create(admin, namespace, "big",
          CheckpointTarget.pod("big", "app"), slowStorage), CheckpointPhase.Completed, TIMEOUT);
      // The slowing is per connection: a deduplicated restore fetches its packs on 4 at once, which took the
      // work down to 8 s and two progress writes in a fresh run. The same link in all, whichever the storage.
      link.slow(FaultInjectingProxy.Request::isDownload, Duration.ZERO,
          deduplication ? BIG_LINK_BYTES_PER_SECOND / 4 : BIG_LINK_BYTES_PER_SECOND);

      ProgressSeen seen = new ProgressSeen();
      Restore done;
      try (var watch = admin.resources(Restore.class).inNamespace(namespace).withName("big").watch(seen.watcher())) {
        Restore restore = restore("big", "big", r -> {});
        Restore created = awaitRestore(restore, r -> r.getStatus() != null && r.getStatus().restoredPod != null);
        kubelet.startPod(namespace, created.getStatus().restoredPod, registry);
        done = awaitRestore(restore, r -> r.getStatus().phase.isTerminal());
      }
      assertThat(done.getStatus().phase).as(done.getStatus().message).isEqualTo(RestorePhase.Completed);
      var archive = checkpoint.getStatus().containers.get(0).archive;
      if (deduplication) {
        // expected: the images written into the tar, then the tar pushed
        seen.assertMovedForward(done.getStatus(), archive.sizeBytes);
        assertThat(seen.progresses()).extracting(p -> p.step).first().isEqualTo(ProgressStatus.DOWNLOADING);
        assertThat(seen.progresses()).extracting(p -> p.step).containsOnly(ProgressStatus.DOWNLOADING,
            ProgressStatus.PUSHING).last().isEqualTo(ProgressStatus.PUSHING);
      } else {
        seen.assertMovedForward(done.getStatus(), archive.storedBytes);
        assertThat(seen.progresses()).extracting(p -> p.step).containsOnly(ProgressStatus.PUSHING);
      }
    }
  }

  // --- helpers ---

  /** A pod labelled app={@code app} whose container "app" is a counter of this test's; the sidecar has no process. */
  void runPod(String pod, String app) throws Exception {
    var counter = Workloads.startInPidNamespace("counter", dir.resolve(namespace + "-" + pod + ".txt").toString());
    cleanup.add(counter);
    kubelet.runPod(new PodBuilder().withNewMetadata().withName(pod).withNamespace(namespace)
        .withLabels(Map.of("app", app)).endMetadata().withNewSpec()
        .addNewContainer().withName("app").withImage("example.org/counter:1").endContainer()
        .addNewContainer().withName("sidecar").withImage("example.org/sidecar:1").endContainer()
        .endSpec().build(), Map.of("app", counter.pid()));
  }

  List<Checkpoint> scheduleOf(String schedule) {
    return admin.resources(Checkpoint.class).inNamespace(namespace).withLabel(Labels.SCHEDULE, schedule).list()
        .getItems();
  }

  Restore restoreOfSchedule(String name, ScheduleRef ref) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().scheduleRef = ref;
    return admin.resource(r).create();
  }

  Checkpoint checkpoint(String pod, String storage) throws Exception {
    runPod(pod, "web");
    return PodCheckpoints.awaitPhase(admin, PodCheckpoints.create(admin, namespace, pod, CheckpointTarget.pod(pod, "app"),
        storage), CheckpointPhase.Completed, TIMEOUT);
  }

  Restore restore(String name, String checkpoint, java.util.function.Consumer<RestoreSpec> spec) {
    Restore r = new Restore();
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace(namespace).build());
    r.setSpec(new RestoreSpec());
    r.getSpec().checkpointRef = new CheckpointRef(checkpoint);
    spec.accept(r.getSpec());
    return admin.resource(r).create();
  }

  Restore awaitRestore(Restore r, java.util.function.Predicate<Restore> condition) {
    var resource = admin.resources(Restore.class).inNamespace(namespace).withName(r.getMetadata().getName());
    await().atMost(TIMEOUT).until(() -> {
      Restore now = resource.get();
      return condition.test(now) || (now.getStatus() != null && now.getStatus().phase == RestorePhase.Failed);
    });
    return resource.get();
  }

  List<Event> events(String name) {
    return PodCheckpoints.events(admin, namespace, name);
  }


  static String storage(String name, String registryUrl, String credentials) {
    String storageName = name + "-" + NODE;
    TestStorage.filesystem(storageName, dir.resolve("storage"))
        .with(spec -> spec.registry = registryUrl == null ? null : registry(registryUrl, credentials)).create(admin);
    return storageName;
  }

  /** The registry at {@code url}, its credentials in Secret {@code credentials}, trusted through the test's CA. */
  static RegistrySpec registry(String url, String credentials) {
    RegistrySpec registry = new RegistrySpec();
    registry.url = url;
    registry.credentialsSecret = new SecretReference(credentials, SYSTEM);
    registry.caSecret = new SecretReference("registry-ca-" + NODE, SYSTEM);
    return registry;
  }

  static void secret(String name, Map<String, String> data) {
    admin.resource(new SecretBuilder().withNewMetadata().withName(name).withNamespace(SYSTEM).endMetadata()
        .withStringData(data).build()).create();
  }

  static void run(String... command) throws Exception {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new IllegalStateException(String.join(" ", command) + " failed: " + output);
    }
  }
}
