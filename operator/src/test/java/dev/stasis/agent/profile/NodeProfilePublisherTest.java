package dev.stasis.agent.profile;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.agent.AgentConfig;
import dev.stasis.agent.KubeletSettings;
import dev.stasis.api.NodeProfile;
import dev.stasis.criu.Criu;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The published NodeProfile, on the fabric8 CRUD mock; the probe looks at this machine. */
@EnableKubernetesMockClient(crud = true)
class NodeProfilePublisherTest {
  KubernetesClient client;
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
  void republishesWhenLabelsChange() {
    publish(config("n2", Map.of("zone", "a"), null));
    assertThat(publish(config("n2", Map.of("zone", "c"), null)).getMetadata().getLabels()).isEqualTo(Map.of("zone", "c"));
    assertThat(client.resources(NodeProfile.class).list().getItems()).extracting(p -> p.getMetadata().getName())
        .containsExactly("n2");
  }
}
