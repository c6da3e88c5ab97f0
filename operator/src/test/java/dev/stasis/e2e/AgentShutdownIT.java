package dev.stasis.e2e;

import dev.stasis.testing.TestStorage;
import dev.stasis.testing.MetricsEndpoint;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.work.AgentShutdown;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.cli.Main;
import dev.stasis.operator.retention.StorageGarbageCollector;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * An agent stopped (SIGTERM) while it uploads a large checkpoint: the upload is aborted, nothing is
 * left in the bucket, the checkpoint ends Failed with reason AgentShutdown instead of staying
 * Running, and a workload it had stopped for the checkpoint runs on.
 */
class AgentShutdownIT {
  static final Duration TIMEOUT = Duration.ofSeconds(90);
  /** 256 MiB of incompressible memory over this link takes ~16 s: long enough to stop the agent mid-upload. */
  static final long LINK_BYTES_PER_SECOND = 16L << 20;

  @TempDir Path dir;

  @Test
  void aStoppedAgentAbortsItsUploadAndMarksTheCheckpointFailed() throws Exception {
    KubernetesClient admin = TestControlPlane.admin();
    String node = "shutdown-" + UUID.randomUUID().toString().substring(0, 6);
    String namespace = TestControlPlane.newNamespace("shutdown");
    try (S3Server s3 = S3Server.start(); FaultInjectingProxy slowLink = FaultInjectingProxy.to(s3.endpoint());
        S3Client bucket = s3.client();
        var memhog = Workloads.startInPidNamespace("memhog", "256", "0", dir.resolve("count.txt").toString())) {
      slowLink.slow(FaultInjectingProxy.Request::isUpload, Duration.ZERO, LINK_BYTES_PER_SECOND);
      s3.createBucket("shutdown");
      TestStorage.s3(node, slowLink.endpoint(), "shutdown").credentials(s3).create(admin);
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

        await().atMost(TIMEOUT).until(() -> bucket.listMultipartUploads(b -> b.bucket("shutdown")).uploads().stream()
            .anyMatch(u -> u.key().contains(uid)));
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
        assertThat(bucket.listMultipartUploads(b -> b.bucket("shutdown")).uploads()).as("multipart upload aborted").isEmpty();
        assertThat(bucket.listObjectsV2(b -> b.bucket("shutdown")).contents()).as("nothing stored but the mark of the"
            + " cluster using the storage").allMatch(o -> o.key().startsWith(StorageGarbageCollector.CLUSTER_MARKERS));
        assertThat(shutdownTook).as("well within a pod's grace period").isLessThan(Duration.ofSeconds(30));

        long count = Workloads.count(dir.resolve("count.txt"));
        await().atMost(Duration.ofSeconds(10)).until(() -> Workloads.count(dir.resolve("count.txt")) > count);
        System.out.printf("agent shutdown mid-upload took %d ms%n", shutdownTook.toMillis());
      } finally {
        stasis.close();
      }
    }
  }

}
