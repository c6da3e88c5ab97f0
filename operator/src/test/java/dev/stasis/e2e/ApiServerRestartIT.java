package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.cli.ControlPlane;
import dev.stasis.cli.Crds;
import dev.stasis.cli.Main;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestStorage;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * The API server (and its etcd) restarted while a checkpoint is uploaded, on a control plane of
 * its own: the upload ends while the API server is away or just after, the agent's status writes
 * wait for it, and the checkpoint ends Completed with exactly one archive and one manifest (and,
 * deduplicated, its chunk index, every pack beside its index), the workload ended only after all
 * were stored.
 */
class ApiServerRestartIT {
  static final Duration TIMEOUT = Duration.ofSeconds(120);
  static final Path SCRIPT = TestControlPlane.repoRoot().resolve("scripts/control-plane.sh");

  @TempDir Path dir;

  @ParameterizedTest(name = "deduplication {0}")
  @ValueSource(booleans = {false, true})
  void aCheckpointOutlivesAnApiServerRestart(boolean deduplication) throws Exception {
    Path cpDir = Files.createTempDirectory(TestControlPlane.repoRoot().resolve("operator/target"), "restarted-cp-");
    String node = "restart-node";
    try (ControlPlane controlPlane = ControlPlane.start(SCRIPT, cpDir);
        KubernetesClient client = TestControlPlane.newClient(controlPlane.kubeconfig());
        S3Server s3 = S3Server.start(); FaultInjectingProxy link = FaultInjectingProxy.to(s3.endpoint());
        S3Client bucket = s3.client();
        var memhog = Workloads.startInPidNamespace("memhog", "32", "0", dir.resolve("count").toString())) {
      Crds.install(client);
      client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("restart").endMetadata().build())
          .create();
      s3.createBucket("restart");
      TestStorage.s3("restart", link.endpoint(), "restart").credentials(s3)
          .with(spec -> spec.deduplication = deduplication).create(client);
      try (InProcessStasis stasis = InProcessStasis.on(client).agent(node, dir.resolve("work"), Main.criuPath(null))
          .start()) {
        await().atMost(TIMEOUT).until(() -> client.resources(NodeProfile.class).withName(node).get() != null);
        await().atMost(TIMEOUT).until(() -> Workloads.count(dir.resolve("count")) > 0);
        // ~8 s of upload (a whole archive's multipart upload, or the pack of its chunks): it ends while
        // the API server is down, or just after.
        String uploading = deduplication ? "/" + ArchiveLayout.PACKS_FOLDER : "/archive";
        link.slow(r -> r.isUpload() && r.target().contains(uploading), Duration.ZERO, 4L << 20);

        Checkpoint checkpoint = new Checkpoint();
        checkpoint.setMetadata(new ObjectMetaBuilder().withName("across").withNamespace("restart").build());
        checkpoint.setSpec(new CheckpointSpec(CheckpointTarget.process(node, (int) memhog.pid())));
        checkpoint.getSpec().storage = "restart";
        checkpoint.getSpec().options = new CheckpointOptions();
        checkpoint.getSpec().options.leaveRunning = false;
        String uid = client.resource(checkpoint).create().getMetadata().getUid();
        await().atMost(TIMEOUT).until(() -> deduplication
            ? link.requests().stream().anyMatch(r -> r.isUpload() && r.target().contains(uploading))
            : bucket.listMultipartUploads(b -> b.bucket("restart")).uploads().stream().anyMatch(u -> u.key().contains(uid)));

        long down = System.nanoTime();
        script("stop", cpDir.toString());
        assertThat(Workloads.isAlive(memhog.pid())).as("stopped for the checkpoint, not ended").isTrue();
        script("start", cpDir.toString(), Integer.toString(port(controlPlane.kubeconfig())));
        Duration outage = Duration.ofNanos(System.nanoTime() - down);

        Checkpoint done = await().atMost(TIMEOUT).until(
            () -> client.resources(Checkpoint.class).inNamespace("restart").withName("across").get(),
            c -> c.getStatus() != null && c.getStatus().phase != null && c.getStatus().phase.isTerminal());
        assertThat(done.getStatus().phase).as(done.getStatus().reason + ": " + done.getStatus().message)
            .isEqualTo(CheckpointPhase.Completed);
        List<String> stored = bucket.listObjectsV2(b -> b.bucket("restart")).contents().stream().map(S3Object::key)
            .sorted().toList();
        List<String> keys = stored.stream().filter(k -> k.contains(uid)).toList();
        assertThat(keys).as("one archive, one manifest" + (deduplication ? ", one chunk index" : ""))
            .hasSize(deduplication ? 3 : 2).anyMatch(k -> k.endsWith("manifest.json")).anyMatch(k -> k.contains("/archive"));
        List<String> packs = stored.stream().filter(k -> k.endsWith(ArchiveLayout.PACK_SUFFIX)).toList();
        assertThat(packs.isEmpty()).as("packs stored").isEqualTo(!deduplication);
        assertThat(packs).allSatisfy(pack -> assertThat(stored)
            .contains(pack.substring(0, pack.length() - ArchiveLayout.PACK_SUFFIX.length()) + ArchiveLayout.PACK_INDEX_SUFFIX));
        assertThat(bucket.listMultipartUploads(b -> b.bucket("restart")).uploads()).isEmpty();
        await().atMost(Duration.ofSeconds(10)).until(() -> !Workloads.isAlive(memhog.pid()));
        System.out.printf("API server away for %d ms during the upload; checkpoint %s%n", outage.toMillis(),
            done.getStatus().message);
      }
    }
  }

  private static int port(Path kubeconfig) throws Exception {
    Matcher server = Pattern.compile("server: https://127.0.0.1:(\\d+)").matcher(Files.readString(kubeconfig));
    assertThat(server.find()).isTrue();
    return Integer.parseInt(server.group(1));
  }

  private static void script(String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(SCRIPT.toString()));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes());
    assertThat(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0).as(output).isTrue();
  }
}
