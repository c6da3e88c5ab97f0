package dev.stasis.agent.profile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.api.NodeProfile;
import dev.stasis.criu.Criu;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The published NodeProfile, on the fabric8 CRUD mock; the probe looks at this machine. */
@EnableKubernetesMockClient(crud = true)
class NodeProfilePublisherTest {
  KubernetesClient client;
  KubernetesMockServer server;
  @TempDir Path dir;

  AgentConfig config(String node, Map<String, String> labels, Path overrides) {
    return new AgentConfig(node, dir.resolve("work"), new Criu(dir.resolve("no-criu"), Map.of()), Set.of(),
        KubeletSettings.defaults(node), Path.of("/"), labels, overrides);
  }

  NodeProfile publish(AgentConfig config) {
    try (var publisher = new NodeProfilePublisher(client, config)) {
      publisher.publishIfChanged();
    }
    return client.resources(NodeProfile.class).withName(config.nodeName()).get();
  }

  @Test
  void labelsAreTheNodesWithTheAgentsOwnOverThem() {
    client.nodes().resource(new NodeBuilder().withNewMetadata().withName("n1")
        .withLabels(Map.of("zone", "a", "kubernetes.io/hostname", "n1")).endMetadata().build()).create();

    NodeProfile profile = publish(config("n1", Map.of("zone", "b", "rack", "7"), null));

    assertThat(profile.getMetadata().getLabels())
        .isEqualTo(Map.of("zone", "b", "rack", "7", "kubernetes.io/hostname", "n1"));
    assertThat(profile.getMetadata().getAnnotations()).doesNotContainKey(ProfileOverrides.ANNOTATION);
    assertThat(profile.getSpec().cpu.flags).isNotEmpty();
    assertThat(profile.getSpec().criu.checkMessage).contains("not installed");
  }

  @Test
  void overridesChangeOnlyWhatTheyNameAndSaySo() throws Exception {
    Path file = Files.writeString(dir.resolve("overrides.json"),
        "{\"cpu\": {\"flags\": [\"sse2\"]}, \"criu\": {\"version\": \"4.1.0\"}, \"gpus\": null}");

    NodeProfile profile = publish(config("posing", Map.of(), file));

    assertThat(profile.getSpec().cpu.flags).containsExactly("sse2");
    assertThat(profile.getSpec().cpu.modelName).as("observed, not overridden").isNotBlank();
    assertThat(profile.getSpec().criu.version).isEqualTo("4.1.0");
    assertThat(profile.getSpec().arch).isNotBlank();
    assertThat(profile.getMetadata().getAnnotations().get(ProfileOverrides.ANNOTATION))
        .isEqualTo("cpu.flags, criu.version, gpus set by " + file + " (test aid, not observed)");
  }

  @Test
  void anOverridesFileThatIsNotAJsonObjectStopsTheAgent() throws Exception {
    Path file = Files.writeString(dir.resolve("overrides.json"), "[\"sse2\"]");
    assertThatThrownBy(() -> new NodeProfilePublisher(client, config("bad", Map.of(), file)))
        .hasMessageContaining("must hold a JSON object");
  }

  @Test
  void whileTheKubeletCannotReachTheRuntimeTheProfileSaysSoAndFollowsItsReturnWithinSeconds() {
    client.nodes().resource(new NodeBuilder().withNewMetadata().withName("n3").endMetadata().withNewStatus()
        .withNewNodeInfo().withContainerRuntimeVersion("containerd://Unknown").endNodeInfo().endStatus().build()).create();
    try (var publisher = new NodeProfilePublisher(client, config("n3", Map.of(), null))) {
      publisher.publishIfChanged();
      var restore = client.resources(NodeProfile.class).withName("n3").get().getSpec().runtime.restore;
      assertThat(restore.restores()).isFalse();
      assertThat(restore.message).startsWith("the kubelet cannot reach containerd (it reports its version as Unknown)");
      assertThat(restore.remedy).isEqualTo("start containerd on the node, or find in its log why it stopped");
      assertThat(restore.unreachable()).as("source Unreachable: Restores wait for it").isTrue();

      client.nodes().withName("n3").editStatus(n -> new NodeBuilder(n).editStatus().editNodeInfo()
          .withContainerRuntimeVersion("containerd://2.2.1").endNodeInfo().endStatus().build());
      // Well before the profile's 60 s refresh: nothing but the recheck publishes here.
      await().atMost(Duration.ofSeconds(NodeProfilePublisher.RECHECK_SECONDS * 3)).untilAsserted(() ->
          assertThat(client.resources(NodeProfile.class).withName("n3").get().getSpec().runtime.version).isEqualTo("2.2.1"));
      assertThat(client.resources(NodeProfile.class).withName("n3").get().getSpec().runtime.restore.restores()).isTrue();
    }
  }

  @Test
  void aNodeTheApiServerFailsToReturnPublishesNothingWrongAndIsAskedForAgainWithinSeconds() {
    client.nodes().resource(new NodeBuilder().withNewMetadata().withName("n4").endMetadata().withNewStatus()
        .withNewNodeInfo().withContainerRuntimeVersion("containerd://2.2.1").endNodeInfo().endStatus().build()).create();
    server.expect().get().withPath("/api/v1/nodes/n4").andReturn(500, "etcdserver: request timed out").once();
    // fabric8 retries a failed request itself for about 100 s by default; this test starts after that
    try (var noRetries = new KubernetesClientBuilder().withConfig(new ConfigBuilder(client.getConfiguration())
            .withRequestRetryBackoffLimit(0).build()).build();
        var publisher = new NodeProfilePublisher(noRetries, config("n4", Map.of(), null))) {
      publisher.publishIfChanged();
      // Not a profile without the Node, whose runtime "reports no version" and so cannot restore.
      assertThat(client.resources(NodeProfile.class).withName("n4").get()).isNull();
      await().atMost(Duration.ofSeconds(NodeProfilePublisher.RECHECK_SECONDS * 3)).untilAsserted(() ->
          assertThat(client.resources(NodeProfile.class).withName("n4").get()).isNotNull());
      var runtime = client.resources(NodeProfile.class).withName("n4").get().getSpec().runtime;
      assertThat(runtime.version).isEqualTo("2.2.1");
      assertThat(runtime.restore.restores()).isTrue();
    }
  }

  @Test
  void republishesWhenLabelsChange() {
    publish(config("n2", Map.of("zone", "a"), null));
    assertThat(publish(config("n2", Map.of("zone", "c"), null)).getMetadata().getLabels()).isEqualTo(Map.of("zone", "c"));
    assertThat(client.resources(NodeProfile.class).list().getItems()).extracting(p -> p.getMetadata().getName())
        .containsExactly("n2");
  }
}
