package dev.stasis.install;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stasis.testing.Helm;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.Manifests;
import dev.stasis.testing.TestControlPlane;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.dsl.NonDeletingOperation;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * config/default as kustomize users apply it: it renders, the real API server accepts it, and it is
 * the same install as the Helm chart's defaults, so the two never drift apart (the chart is the
 * source; config/ follows it).
 */
class KustomizeIT {
  static Kubectl kubectl;

  @BeforeAll
  static void apiServer() throws Exception {
    kubectl = new Kubectl(TestControlPlane.kubeconfig());
    // A dry run creates nothing, so the namespaced objects need the namespace to exist already.
    TestControlPlane.admin().namespaces()
        .resource(new NamespaceBuilder().withNewMetadata().withName("stasis-system").endMetadata().build())
        .createOr(NonDeletingOperation::update);
  }

  @Test
  void configDefaultRendersAndTheApiServerAcceptsIt() throws Exception {
    String rendered = kubectl.run("kustomize", "config/default").ok().output();
    Map<String, ObjectNode> objects = Manifests.parse(rendered);
    // The test JVM installed the CRDs already (field manager fabric8): taking them over is what an install does.
    String applied = kubectl.runWithInput(rendered, "apply", "--server-side", "--force-conflicts", "--dry-run=server",
        "-f", "-").ok().output();
    assertThat(applied.lines().filter(l -> l.endsWith("serverside-applied (server dry run)")))
        .as("every object accepted:\n%s", applied).hasSize(objects.size());
    assertThat(objects.get("Namespace /stasis-system").at("/metadata/labels/pod-security.kubernetes.io~1enforce").asText())
        .as("the agent is privileged; Pod Security admission must allow it").isEqualTo("privileged");
  }

  @Test
  void configDefaultInstallsWhatTheChartInstallsWithItsDefaults() throws Exception {
    Map<String, ObjectNode> kustomize = comparable(kubectl.run("kustomize", "config/default").ok().output());
    kustomize.remove("Namespace /stasis-system"); // helm install --create-namespace makes it
    Map<String, ObjectNode> chart = comparable(new Helm().run("template", "stasis", "charts/stasis", "-n", "stasis-system",
        "--include-crds").ok().output());
    assertThat(kustomize.keySet()).isEqualTo(chart.keySet());
    chart.forEach((key, object) -> assertThat(kustomize.get(key)).as("%s in config/ and in the chart", key).isEqualTo(object));
  }

  private static Map<String, ObjectNode> comparable(String rendered) {
    Map<String, ObjectNode> objects = new TreeMap<>();
    Manifests.parse(rendered).forEach((key, object) -> objects.put(key, Manifests.comparable(object)));
    return objects;
  }
}
