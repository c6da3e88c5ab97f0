package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.work.AgentShutdown;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.CheckpointStorageStatus;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.cli.Main;
import dev.stasis.operator.retention.StorageGarbageCollector;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.MetricsEndpoint;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestStorage;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * An agent stopped (SIGTERM) while it uploads a large checkpoint, a whole archive or deduplicated
 * packs: the upload is aborted, the checkpoint ends Failed with reason AgentShutdown instead of
 * staying Running, and a workload it had stopped for the checkpoint runs on. A whole archive
 * leaves nothing in the bucket; packs the agent had finished are referred to by no manifest, and
 * the storage's collection removes them once they are older than its grace period.
 */
class AgentShutdownIT {
  static final Duration TIMEOUT = Duration.ofSeconds(90);
  /** 256 MiB of incompressible memory over this link takes ~16 s: long enough to stop the agent mid-upload. */
  static final long LINK_BYTES_PER_SECOND = 16L << 20;
  /**
   * Per pack PUT: the agent writes 3 packs of 16 MiB at a time, so 256 MiB takes ~20 s and the
   * first packs are stored ~4 s into the upload.
   */
  static final long PACK_LINK_BYTES_PER_SECOND = 4L << 20;
  static final String BUCKET = "shutdown";

  @TempDir Path dir;

  @Test
  void aStoppedAgentAbortsItsUploadAndMarksTheCheckpointFailed() throws Exception {
    String node = "shutdown-" + UUID.randomUUID().toString().substring(0, 6);
    String namespace = TestControlPlane.newNamespace("shutdown");
    try (S3Server s3 = S3Server.start(); FaultInjectingProxy slowLink = FaultInjectingProxy.to(s3.endpoint());
        S3Client bucket = s3.client()) {
      slowLink.slow(FaultInjectingProxy.Request::isUpload, Duration.ZERO, LINK_BYTES_PER_SECOND);
      s3.createBucket(BUCKET);
      TestStorage.s3(node, slowLink.endpoint(), BUCKET).credentials(s3).with(spec -> spec.deduplication = false)
          .create(TestControlPlane.admin());
      stopTheAgentWhile(node, namespace, uid -> () -> bucket.listMultipartUploads(b -> b.bucket(BUCKET)).uploads()
          .stream().anyMatch(u -> u.key().contains(uid)));

      assertThat(bucket.listMultipartUploads(b -> b.bucket(BUCKET)).uploads()).as("multipart upload aborted").isEmpty();
      assertThat(keys(bucket)).as("nothing stored but the mark of the cluster using the storage")
          .allMatch(k -> k.startsWith(StorageGarbageCollector.CLUSTER_MARKERS));
    }
  }

  @Test
  void anAgentStoppedWhileItWritesPacksLeavesThemToTheCollector() throws Exception {
    KubernetesClient admin = TestControlPlane.admin();
    String node = "shutdown-" + UUID.randomUUID().toString().substring(0, 6);
    String namespace = TestControlPlane.newNamespace("shutdown");
    String packs = ArchiveLayout.packPrefix(namespace);
    try (S3Server s3 = S3Server.start(); FaultInjectingProxy slowLink = FaultInjectingProxy.to(s3.endpoint());
        S3Client bucket = s3.client()) {
      slowLink.slow(FaultInjectingProxy.Request::isUpload, Duration.ZERO, PACK_LINK_BYTES_PER_SECOND);
      s3.createBucket(BUCKET);
      TestStorage.s3(node, slowLink.endpoint(), BUCKET).credentials(s3).with(spec -> {
        spec.deduplication = true;
        spec.garbageCollection = new CheckpointStorageSpec.GarbageCollection();
        spec.garbageCollection.gracePeriod = "2s";
      }).create(admin);
      // Mid-pack: the first packs are stored, more are on their way.
      stopTheAgentWhile(node, namespace, uid -> () -> keys(bucket).stream()
          .anyMatch(k -> k.startsWith(packs) && k.endsWith(".pack")));

      assertThat(bucket.listMultipartUploads(b -> b.bucket(BUCKET)).uploads()).as("no upload left open").isEmpty();
      List<String> left = keys(bucket);
      assertThat(left).as("the packs stored before the stop are left to the collector").anyMatch(k -> k.startsWith(packs));
      assertThat(left).as("nothing but packs, and no manifest that refers to them")
          .allMatch(k -> k.startsWith(StorageGarbageCollector.CLUSTER_MARKERS) || k.startsWith(packs));

      try (InProcessStasis operator = InProcessStasis.on(admin).start()) {
        Instant newest = bucket.listObjectsV2(b -> b.bucket(BUCKET).prefix(packs)).contents().stream()
            .map(S3Object::lastModified).max(Instant::compareTo).orElseThrow();
        await("the packs are older than the grace period").atMost(TIMEOUT)
            .until(() -> Instant.now().isAfter(newest.plusSeconds(3)));
        CheckpointStorageStatus.Usage usage = TestStorage.collectNow(admin, node, "2s", TIMEOUT).getStatus().usage;
        assertThat(keys(bucket)).as("the collection removed the packs").noneMatch(k -> k.startsWith(packs))
            .allMatch(k -> k.startsWith(StorageGarbageCollector.CLUSTER_MARKERS));
        assertThat(usage.storedBytes).as("the storage's usage after the collection").isZero();
        assertThat(usage.manifests).isZero();
      }
    }
  }

  /** A checkpoint of 256 MiB the agent is asked to take and stopped at {@code midUpload}: what it leaves in the API. */
  private void stopTheAgentWhile(String node, String namespace, UploadSeen midUpload) throws Exception {
    KubernetesClient admin = TestControlPlane.admin();
    try (var memhog = Workloads.startInPidNamespace("memhog", "256", "0", dir.resolve("count.txt").toString())) {
      InProcessStasis stasis = InProcessStasis.on(admin).agent(node, dir.resolve("work"), Main.criuPath(null))
          .withMetricsServer().start();
      try {
        await().atMost(TIMEOUT).until(() -> admin.resources(NodeProfile.class).withName(node).get() != null);
        await().atMost(TIMEOUT).until(() -> Workloads.count(dir.resolve("count.txt")) > 0); // memory populated
        Checkpoint checkpoint = new Checkpoint();
        checkpoint.setMetadata(new ObjectMetaBuilder().withName("big").withNamespace(namespace).build());
        checkpoint.setSpec(new CheckpointSpec(CheckpointTarget.process(node, (int) memhog.pid())));
        checkpoint.getSpec().storage = node;
        checkpoint.getSpec().options = new CheckpointOptions();
        checkpoint.getSpec().options.leaveRunning = false; // stopped until stored: the shutdown must resume it
        String uid = admin.resource(checkpoint).create().getMetadata().getUid();

        Callable<Boolean> uploading = midUpload.of(uid);
        await().atMost(TIMEOUT).until(() -> uploading.call() && admin.resources(Checkpoint.class).inNamespace(namespace)
            .withName("big").get().getStatus().phase == CheckpointPhase.Running);
        String metrics = MetricsEndpoint.get(stasis.metricsPort(), "/metrics").body();
        assertThat(MetricsEndpoint.value(metrics, "stasis_queue_depth", "node=\"" + node + "\"", "kind=\"checkpoint\""))
            .as("the checkpoint being uploaded").hasValue(1.0);
        long before = System.nanoTime();
        stasis.close(); // what the agent's SIGTERM hook does
        Duration shutdownTook = Duration.ofNanos(System.nanoTime() - before);

        Checkpoint failed = admin.resources(Checkpoint.class).inNamespace(namespace).withName("big").get();
        assertThat(failed.getStatus().phase).as(failed.getStatus().message).isEqualTo(CheckpointPhase.Failed);
        assertThat(failed.getStatus().reason).isEqualTo(AgentShutdown.REASON);
        assertThat(failed.getStatus().message).contains("was stopped while this ran", "nothing was kept");
        assertThat(admin.v1().events().inNamespace(namespace).list().getItems())
            .anyMatch(e -> AgentShutdown.REASON.equals(e.getReason()) && "Warning".equals(e.getType()));
        assertThat(shutdownTook).as("well within a pod's grace period").isLessThan(Duration.ofSeconds(30));

        long count = Workloads.count(dir.resolve("count.txt"));
        await().atMost(Duration.ofSeconds(10)).until(() -> Workloads.count(dir.resolve("count.txt")) > count);
        System.out.printf("agent shutdown mid-upload took %d ms%n", shutdownTook.toMillis());
      } finally {
        stasis.close();
      }
    }
  }

  /** When a checkpoint (its UID) is mid-upload. */
  @FunctionalInterface
  private interface UploadSeen {
    Callable<Boolean> of(String uid);
  }

  private static List<String> keys(S3Client bucket) {
    return TestStorage.keysIn(bucket, BUCKET);
  }
}
