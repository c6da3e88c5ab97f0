package dev.stasis.install;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stasis.testing.Helm;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.Manifests;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Tool;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.dsl.NonDeletingOperation;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * charts/stasis as `helm` sees it: it lints, renders for default and non-default values, refuses
 * bad values with a message, and the real API server accepts every object it renders.
 */
class HelmChartIT {
  static final String CHART = "charts/stasis";
  static final String DEFAULTS = "defaults";
  /** Stands in for the Prometheus operator's CRD, so that the API server knows the kind. */
  static final String POD_MONITOR_CRD = """
      apiVersion: apiextensions.k8s.io/v1
      kind: CustomResourceDefinition
      metadata: {name: podmonitors.monitoring.coreos.com}
      spec:
        group: monitoring.coreos.com
        names: {kind: PodMonitor, listKind: PodMonitorList, plural: podmonitors, singular: podmonitor}
        scope: Namespaced
        versions:
          - name: v1
            served: true
            storage: true
            schema:
              openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
      """;

  static Helm helm = new Helm();
  static Kubectl kubectl;

  @BeforeAll
  static void apiServer() throws Exception {
    kubectl = new Kubectl(TestControlPlane.kubeconfig());
    TestControlPlane.admin().namespaces()
        .resource(new NamespaceBuilder().withNewMetadata().withName("stasis-system").endMetadata().build())
        .createOr(NonDeletingOperation::update);
    kubectl.runWithInput(POD_MONITOR_CRD, "apply", "--server-side", "-f", "-").ok();
    // Until the API server wrote the CRD's first conditions, kubectl wait fails instead of waiting.
    await().atMost(Duration.ofSeconds(60)).until(() -> kubectl.run("wait", "--for=condition=Established",
        "--timeout=10s", "crd/podmonitors.monitoring.coreos.com").exitCode() == 0);
  }

  @ParameterizedTest
  @ValueSource(strings = {DEFAULTS, "ci/s3-storage-values.yaml", "ci/filesystem-storage-values.yaml"})
  void lintsStrictly(String values) throws Exception {
    assertThat(helm.run(args(values, "lint", "--strict", CHART)).ok().output()).contains("0 chart(s) failed");
  }

  @ParameterizedTest
  @ValueSource(strings = {DEFAULTS, "ci/s3-storage-values.yaml", "ci/filesystem-storage-values.yaml"})
  void theApiServerAcceptsEveryRenderedObject(String values) throws Exception {
    String rendered = template(values, "--include-crds", "--api-versions", "monitoring.coreos.com/v1");
    Map<String, ObjectNode> objects = Manifests.parse(rendered);
    // The test JVM installed the CRDs already (field manager fabric8): taking them over is what an install does.
    String applied = kubectl.runWithInput(rendered, "apply", "--server-side", "--force-conflicts", "--dry-run=server",
        "-f", "-").ok().output();
    assertThat(applied.lines().filter(l -> l.endsWith("serverside-applied (server dry run)")))
        .as("every object accepted:\n%s", applied).hasSize(objects.size());
    assertThat(objects.keySet()).as("with values %s", values)
        .contains("Deployment stasis-system/stasis-operator", "DaemonSet stasis-system/stasis-agent",
            "ValidatingAdmissionPolicy /stasis-agent-own-node", "CustomResourceDefinition /checkpoints.stasis.dev");
  }

  @Test
  void aPodMonitorOnlyWhereThePrometheusCrdsExist() throws Exception {
    assertThat(Manifests.parse(template(DEFAULTS)).keySet()).noneMatch(k -> k.startsWith("PodMonitor"));
    ObjectNode monitor = Manifests.parse(template(DEFAULTS, "--api-versions", "monitoring.coreos.com/v1"))
        .get("PodMonitor stasis-system/stasis");
    assertThat(monitor).isNotNull();
    assertThat(monitor.at("/spec/podMetricsEndpoints/0/path").asText()).isEqualTo("/metrics");
    assertThat(monitor.at("/spec/podMetricsEndpoints/0/port").asText()).isEqualTo("metrics");
  }

  /** Off by default; when asked for, the dashboard as docs/ has it, labelled for Grafana's sidecar. */
  @Test
  void aGrafanaDashboardForGrafanasSidecarWhenAskedFor() throws Exception {
    assertThat(Manifests.parse(template(DEFAULTS)).keySet()).noneMatch(k -> k.startsWith("ConfigMap"));
    JsonNode map = Manifests.parse(template("ci/s3-storage-values.yaml")).get("ConfigMap stasis-system/stasis-grafana-dashboard");
    assertThat(map.at("/metadata/labels/grafana_dashboard").asText()).isEqualTo("1");
    assertThat(map.at("/metadata/labels/team").asText()).isEqualTo("research");
    assertThat(map.at("/metadata/annotations/grafana_folder").asText()).isEqualTo("Stasis");
    Path repo = TestControlPlane.repoRoot();
    assertThat(map.at("/data/stasis.json").asText()).isEqualTo(Files.readString(repo.resolve(CHART + "/dashboards/stasis.json")).strip())
        .isEqualTo(Files.readString(repo.resolve("docs/grafana-dashboard.json")).strip());
  }

  @Test
  void theOperatorRunsWithoutPrivilegesAndElectsALeader() throws Exception {
    JsonNode pod = Manifests.parse(template(DEFAULTS)).get("Deployment stasis-system/stasis-operator").at("/spec/template/spec");
    JsonNode container = pod.at("/containers/0");
    assertThat(pod.at("/securityContext/runAsNonRoot").asBoolean()).isTrue();
    assertThat(pod.at("/securityContext/seccompProfile/type").asText()).isEqualTo("RuntimeDefault");
    assertThat(container.at("/securityContext/readOnlyRootFilesystem").asBoolean()).isTrue();
    assertThat(container.at("/securityContext/allowPrivilegeEscalation").asBoolean()).isFalse();
    assertThat(container.at("/securityContext/capabilities/drop").toString()).isEqualTo("[\"ALL\"]");
    assertThat(container.at("/livenessProbe/httpGet/path").asText()).isEqualTo("/healthz");
    assertThat(container.at("/readinessProbe/httpGet/path").asText()).isEqualTo("/readyz");
    assertThat(container.at("/resources/limits/memory").asText()).isNotEmpty();
    assertThat(container.at("/args").toString()).contains("--leader-election-namespace=$(POD_NAMESPACE)",
        "\"--log-format=json\"", "\"--log-level=info\"");
    assertThat(Manifests.parse(template(DEFAULTS)).get("Deployment stasis-system/stasis-operator").at("/spec/replicas").asInt())
        .isEqualTo(2);
  }

  @Test
  void theAgentRunsOnEveryNodeWithAPodBoundTokenAndTheHostPathsCriuNeeds() throws Exception {
    JsonNode pod = Manifests.parse(template(DEFAULTS)).get("DaemonSet stasis-system/stasis-agent").at("/spec/template/spec");
    JsonNode container = pod.at("/containers/0");
    assertThat(pod.at("/hostPID").asBoolean()).isTrue();
    assertThat(pod.at("/hostNetwork").asBoolean()).isFalse();
    assertThat(pod.at("/tolerations").toString()).isEqualTo("[{\"operator\":\"Exists\"}]");
    assertThat(pod.at("/automountServiceAccountToken").asBoolean(true)).isFalse();
    assertThat(container.at("/securityContext/privileged").asBoolean()).isTrue();
    assertThat(container.at("/env/0/name").asText()).isEqualTo("NODE_NAME");
    assertThat(container.at("/env/0/valueFrom/fieldRef/fieldPath").asText()).isEqualTo("spec.nodeName");
    // CRIU in the namespaces of the node's init, and the node's files as that process sees them.
    assertThat(container.at("/env").toString()).contains("{\"name\":\"STASIS_HOST_NAMESPACES_PID\",\"value\":\"1\"}");
    assertThat(container.at("/args").toString()).contains("\"--host-root=/proc/1/root\"",
        "\"--kubelet-checkpoint-dir=/var/lib/kubelet/checkpoints\"", "\"--log-format=json\"").doesNotContain("--kubelet-url");
    // Whole numbers, not the floats YAML would turn 1 GiB into (1.073741824e+09).
    assertThat(container.at("/args").toString()).contains("\"--travelling-files-max-count=256\"",
        "\"--travelling-files-max-bytes=1073741824\"");
    List<String> hostPaths = new ArrayList<>();
    pod.at("/volumes").forEach(v -> {
      if (v.has("hostPath")) {
        hostPaths.add(v.at("/hostPath/path").asText());
      }
    });
    assertThat(hostPaths).containsExactly("/var/lib/stasis", "/var/lib/kubelet/checkpoints");
    assertThat(pod.at("/volumes").toString()).contains("\"serviceAccountToken\":{\"path\":\"token\"");
  }

  @Test
  void aDefaultStorageFromValues() throws Exception {
    Map<String, ObjectNode> objects = Manifests.parse(template("ci/s3-storage-values.yaml"));
    JsonNode storage = objects.get("CheckpointStorage /archives");
    assertThat(storage.at("/spec/default").asBoolean()).isTrue();
    assertThat(storage.at("/spec/s3/bucket").asText()).isEqualTo("checkpoints");
    assertThat(storage.at("/spec/s3/credentialsSecret/namespace").asText()).isEqualTo("stasis-system");
    assertThat(objects.get("Secret stasis-system/archives-credentials").at("/stringData/accessKeyId").asText())
        .isEqualTo("EXAMPLEKEY");
    assertThat(storage.at("/spec/registry/url").asText()).isEqualTo("https://registry.example.com/stasis/checkpoints");
    assertThat(storage.at("/spec/registry/credentialsSecret").toString())
        .isEqualTo("{\"name\":\"registry-credentials\",\"namespace\":\"stasis-system\"}");
    assertThat(storage.at("/spec/registry/caSecret/name").asText()).isEqualTo("registry-ca");
    assertThat(storage.at("/spec/registry/insecure").isMissingNode()).isTrue();
    JsonNode agent = objects.get("DaemonSet stasis-system/stasis-agent").at("/spec/template/spec/containers/0");
    assertThat(agent.at("/args").toString()).contains("--criu-env=CRIU_FAULT=130", "--allow-host-processes=hpc,simulations",
        "--kubelet-url=https://$(NODE_IP):10250", "--host-root=/proc/4242/root");
    assertThat(agent.at("/image").asText()).isEqualTo("registry.example.com/stasis/stasis-agent:0.1.0-rc1"
        + "@sha256:50d858e0985ecc7f60418aaf0cc5ab587f42c2570a884095a9e8ccacd0f6545c");
  }

  @Test
  void badValuesAreRefusedWithAMessageThatSaysWhatToFix() throws Exception {
    assertRefused("additional properties 'replica' not allowed", "--set", "operator.replica=3");
    assertRefused("operator.replicas > 1 needs operator.leaderElection: true", "--set", "operator.leaderElection=false");
    assertRefused("missing property 'bucket'", "--set", "defaultStorage.enabled=true");
    assertRefused("/metrics/agentPort", "--set", "metrics.agentPort=0");
    assertRefused("/logging/format", "--set", "logging.format=xml");
    assertRefused("/operator/image/digest", "--set", "operator.image.digest=latest");
    assertRefused("at '/defaultStorage/registry': missing property 'url'", "--set", "defaultStorage.registry.insecure=true");
  }

  private static void assertRefused(String message, String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of("template", "stasis", CHART, "-n", "stasis-system"));
    command.addAll(List.of(args));
    Tool.Result result = helm.run(command.toArray(String[]::new));
    assertThat(result.exitCode()).as(result.output()).isNotZero();
    assertThat(result.output()).contains(message);
  }

  private static String template(String values, String... extra) throws Exception {
    List<String> command = new ArrayList<>(List.of("template", "stasis", CHART, "-n", "stasis-system"));
    command.addAll(List.of(extra));
    return helm.run(args(values, command.toArray(String[]::new))).ok().output();
  }

  private static String[] args(String values, String... command) {
    List<String> args = new ArrayList<>(List.of(command));
    if (!values.equals(DEFAULTS)) {
      args.addAll(List.of("-f", CHART + "/" + values));
    }
    return args.toArray(String[]::new);
  }
}
