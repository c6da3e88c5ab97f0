package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.ArchiveStatus;
import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.Restore;
import dev.stasis.api.RestorePhase;
import dev.stasis.image.CheckpointImage;
import dev.stasis.image.Registry;
import dev.stasis.image.RegistryClient;
import dev.stasis.testing.CounterPods;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.PodCheckpoints;
import dev.stasis.testing.Restores;
import dev.stasis.testing.TestNode;
import dev.stasis.testing.WorkloadImages;
import dev.stasis.tls.TlsTrust;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Deduplicated pod checkpoints on the real node of scripts/node.sh: the kubelet's archive of a
 * container holding 64 MiB of incompressible memory is stored as a tar skeleton and the chunks of
 * its pages images; a second checkpoint of the same pod adds little, and containerd restores from
 * the tar put together again, its memory exact (the workload checks it and exits otherwise).
 */
@ExtendWith(TestNode.Extension.class)
class PodDeduplicationOnNodeIT {
  private static final Logger log = LoggerFactory.getLogger(PodDeduplicationOnNodeIT.class);
  static final Duration TIMEOUT = Duration.ofSeconds(180);
  static final ObjectMapper JSON = new ObjectMapper();
  static final String SYSTEM = "stasis-system";
  static final int MEMORY_MIB = 64;

  @TempDir static Path dir;
  static TestNode node;
  static KubernetesClient admin;
  static InProcessStasis stasis;
  static String image;
  static String storage;

  @BeforeAll
  static void start(TestNode testNode) throws Exception {
    node = testNode;
    admin = node.admin();
    image = WorkloadImages.push(node.registry(), "workloads/pod-memcounter", "1", "pod-memcounter",
        String.valueOf(MEMORY_MIB));
    Path token = node.writeToken(dir.resolve("agent.token"), SYSTEM, "stasis-agent");
    stasis = node.startStasis(dir.resolve("work"), node.kubeletUrl(), token);
    storage = node.configuredPodStorage("dedup-on-node", dir.resolve("storage"), spec -> spec.deduplication = true);
  }

  @AfterAll
  static void stop() {
    if (stasis != null) stasis.close();
  }

  @Test
  void aSecondCheckpointAddsLittleAndRestoresWithItsMemoryExact() throws Exception {
    String namespace = node.newNamespace("poddedup");
    CounterPods.run(admin, namespace, "mem", Map.of("app", "mem"), image, "app");

    Checkpoint first = checkpoint(namespace, "first", "mem");
    long before = CounterPods.lastCount(admin, namespace, "mem", "app");
    Checkpoint second = checkpoint(namespace, "second", "mem");
    ArchiveStatus firstArchive = first.getStatus().containers.get(0).archive;
    ArchiveStatus secondArchive = second.getStatus().containers.get(0).archive;
    log.info("pod checkpoints of {} MiB: first {} bytes logical, {} new; second {} logical, {} new", MEMORY_MIB,
        firstArchive.sizeBytes, firstArchive.newBytes, secondArchive.sizeBytes, secondArchive.newBytes);

    // Both are deduplicated: the memory is in chunks, the archive object only the tar's skeleton.
    JsonNode stored = storedManifest(namespace, second);
    assertThat(stored.at("/chunks/indexKey").asText()).endsWith("/containers/app/chunks.idx");
    assertThat(stored.at("/chunks/imagesBytes").asLong()).isGreaterThanOrEqualTo(MEMORY_MIB << 20);
    assertThat(secondArchive.sizeBytes).isGreaterThan((long) MEMORY_MIB << 20);
    assertThat(secondArchive.storedBytes).isLessThan(secondArchive.sizeBytes / 10);
    // The first stored the memory; the second only what changed (the counter's pages) and its small files.
    assertThat(firstArchive.newBytes).isGreaterThan((long) MEMORY_MIB << 20);
    assertThat(secondArchive.newBytes).isLessThan(secondArchive.sizeBytes / 20);

    // stasis inspect puts the kubelet's archive together as a restore does, and reads the dump in it.
    JsonNode report = JSON.readTree(InspectIT.inspectAs(List.of("second", "-n", namespace, "-o", "json", "--kubeconfig",
        node.kubeconfig().toString())).ok());
    assertThat(report.at("/archives/0/deduplicated/imagesBytes").asLong())
        .isEqualTo(stored.at("/chunks/imagesBytes").asLong());
    assertThat(report.at("/archives/0/dump/processes/0/command").asText()).isEqualTo("pod-memcounter");

    admin.pods().inNamespace(namespace).withName("mem").withGracePeriod(0).delete();
    admin.pods().inNamespace(namespace).withName("mem").waitUntilCondition(p -> p == null, 60, TimeUnit.SECONDS);
    Restore done = Restores.awaitEnd(admin, admin.resource(Restores.of(namespace, "mem", second.getMetadata().getName()))
        .create(), TIMEOUT);
    assertThat(done.getStatus().phase).as(done.getStatus().message).isEqualTo(RestorePhase.Completed);

    // The layer is the kubelet's tar as it was, put together again: its digest is the tar's sha256.
    JsonNode manifest = JSON.readTree(registry(namespace).manifest("app-" + done.getMetadata().getUid()));
    assertThat(manifest.at("/layers/0/mediaType").asText()).isEqualTo(CheckpointImage.LAYER_TAR);
    assertThat(manifest.at("/layers/0/digest").asText()).isEqualTo("sha256:" + stored.at("/archive/tarSha256").asText());

    // It counts on past several checks of its memory, never restarted.
    String restored = done.getStatus().restoredPod;
    await("the restored container counts on").atMost(TIMEOUT)
        .until(() -> CounterPods.lastCount(admin, namespace, restored, "app") > before + 70);
    CounterPods.assertCountsOn(CounterPods.counts(admin, namespace, restored, "app"), before);
    assertThat(admin.pods().inNamespace(namespace).withName(restored).get().getStatus().getContainerStatuses())
        .allSatisfy(s -> assertThat(s.getRestartCount()).isZero());
  }

  /**
   * The first checkpoint's chunks altered in storage: its Restore fails before anything is pushed,
   * with the reason a process checkpoint's would give, and no pod is made.
   */
  @Test
  void aRestoreOfAlteredChunksFailsBeforeTheRuntimeSeesAnything() throws Exception {
    String namespace = node.newNamespace("poddedupbad");
    CounterPods.run(admin, namespace, "mem", Map.of("app", "mem"), image, "app");
    Checkpoint checkpoint = checkpoint(namespace, "mem", "mem");
    admin.pods().inNamespace(namespace).withName("mem").withGracePeriod(0).delete();
    List<Path> packs;
    try (Stream<Path> files = Files.walk(dir.resolve("storage").resolve(namespace).resolve(".packs"))) {
      packs = files.filter(f -> f.toString().endsWith(".pack")).toList();
    }
    assertThat(packs).isNotEmpty();
    for (Path pack : packs) {
      try (RandomAccessFile file = new RandomAccessFile(pack.toFile(), "rw")) {
        long middle = file.length() / 2;
        file.seek(middle);
        int b = file.read();
        file.seek(middle);
        file.write(b ^ 0x01);
      }
    }

    Restore done = Restores.awaitEnd(admin, admin.resource(Restores.of(namespace, "mem",
        checkpoint.getMetadata().getName())).create(), TIMEOUT);

    assertThat(done.getStatus().phase).isEqualTo(RestorePhase.Failed);
    assertThat(done.getStatus().reason).as(done.getStatus().message).isEqualTo("ArchiveNotAuthentic");
    assertThat(done.getStatus().message).contains("no image was made");
    assertThat(done.getStatus().restoredPod).isNull();
    assertThat(admin.pods().inNamespace(namespace).list().getItems()).isEmpty();
  }

  Checkpoint checkpoint(String namespace, String name, String pod) {
    return PodCheckpoints.awaitPhase(admin, PodCheckpoints.create(admin, namespace, name, CheckpointTarget.pod(pod, "app"),
        storage), CheckpointPhase.Completed, TIMEOUT);
  }

  JsonNode storedManifest(String namespace, Checkpoint c) throws Exception {
    return JSON.readTree(dir.resolve("storage").resolve(namespace).resolve(c.getMetadata().getName() + "-"
        + c.getMetadata().getUid()).resolve("containers/app/manifest.json").toFile());
  }

  static RegistryClient registry(String namespace) throws Exception {
    return RegistryClient.open(Registry.of("http://" + node.podRegistry(), null, null, TlsTrust.system()),
        "stasis/" + namespace);
  }
}
