package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.testing.Kubectl;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Tool;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Invalid resources are refused by the real API server at admission (the CRDs' OpenAPI schema and
 * CEL rules), with words a person can act on, as `kubectl apply` shows them.
 */
class AdmissionIT {
  static Kubectl kubectl;
  static String ns;

  @BeforeAll
  static void controlPlane() throws Exception {
    kubectl = new Kubectl(TestControlPlane.kubeconfig());
    ns = TestControlPlane.newNamespace("admission");
  }

  static String checkpoint(String name, String spec) {
    return "apiVersion: stasis.dev/v1alpha1\nkind: Checkpoint\nmetadata: {name: " + name + ", namespace: " + ns
        + "}\nspec: " + spec + "\n";
  }

  static String storage(String name, String spec) {
    return "apiVersion: stasis.dev/v1alpha1\nkind: CheckpointStorage\nmetadata: {name: " + name + "}\nspec: " + spec + "\n";
  }

  static String restore(String name, String spec) {
    return "apiVersion: stasis.dev/v1alpha1\nkind: Restore\nmetadata: {name: " + name + ", namespace: " + ns
        + "}\nspec: " + spec + "\n";
  }

  static String migration(String name, String spec) {
    return "apiVersion: stasis.dev/v1alpha1\nkind: Migration\nmetadata: {name: " + name + ", namespace: " + ns
        + "}\nspec: " + spec + "\n";
  }

  static String schedule(String name, String spec) {
    return "apiVersion: stasis.dev/v1alpha1\nkind: CheckpointSchedule\nmetadata: {name: " + name + ", namespace: " + ns
        + "}\nspec: " + spec + "\n";
  }

  static Stream<Arguments> invalidResources() {
    return Stream.of(
        Arguments.of("both pod and process targets",
            checkpoint("both", "{target: {process: {node: node-a, pid: 42}, pod: {name: p}}}"),
            "set exactly one of target.process (a process tree on a node) or target.pod"),
        Arguments.of("neither target", checkpoint("neither", "{target: {}}"), "set exactly one of target.process"),
        Arguments.of("no target at all", checkpoint("none", "{storage: s}"), "spec.target: Required value"),
        Arguments.of("PID 1", checkpoint("init", "{target: {process: {node: node-a, pid: 1}}}"),
            "spec.target.process.pid: Invalid value: 1: spec.target.process.pid in body should be greater than or equal to 2"),
        Arguments.of("process without node", checkpoint("nonode", "{target: {process: {pid: 42}}}"),
            "spec.target.process.node: Required value"),
        Arguments.of("zero timeout", checkpoint("zero", "{target: {process: {node: node-a, pid: 42}}, options: {timeoutSeconds: 0}}"),
            "spec.options.timeoutSeconds in body should be greater than or equal to 1"),
        Arguments.of("storage with s3 and filesystem",
            storage("both-" + ns, "{s3: {bucket: b}, filesystem: {path: /x}}"),
            "set exactly one of s3 (an S3-compatible bucket) or filesystem"),
        Arguments.of("storage with neither", storage("neither-" + ns, "{compression: zstd}"), "set exactly one of s3"),
        Arguments.of("unknown compression", storage("lz4-" + ns, "{filesystem: {path: /x}, compression: lz4}"),
            "spec.compression: Unsupported value: \"lz4\": supported values: \"none\", \"zstd\""),
        Arguments.of("relative filesystem path", storage("rel-" + ns, "{filesystem: {path: data/x}}"),
            "spec.filesystem.path in body should match '^/.*'"),
        Arguments.of("S3 endpoint that is not http(s)", storage("ftp-" + ns, "{s3: {bucket: b, endpoint: 'ftp://x'}}"),
            "spec.s3.endpoint in body should match '^https?://.+'"),
        Arguments.of("S3 without bucket", storage("nobucket-" + ns, "{s3: {endpoint: 'http://x'}}"),
            "spec.s3.bucket: Required value"),
        Arguments.of("packs' waste bound over 100%",
            storage("unused-" + ns, "{filesystem: {path: /x}, garbageCollection: {maxUnusedPercent: 150}}"),
            "spec.garbageCollection.maxUnusedPercent in body should be less than or equal to 100"),
        Arguments.of("restore without checkpointRef or scheduleRef", restore("noref", "{placement: {nodeName: node-a}}"),
            "set exactly one of checkpointRef (a Checkpoint) or scheduleRef"),
        Arguments.of("negative retention", schedule("neg", "{schedule: '@daily', retention: {keepLast: -1}}"),
            "spec.retention.keepLast in body should be greater than or equal to 1"),
        Arguments.of("schedule without schedule", schedule("nosched", "{suspend: true}"), "spec.schedule: Required value"),
        Arguments.of("one and several containers of a pod",
            checkpoint("containers", "{target: {pod: {name: p, container: a, containers: [b, c]}}}"),
            "set container (one) or containers (several), not both"),
        Arguments.of("spec.storage with a template",
            schedule("storage", "{schedule: '@daily', storage: s, checkpointTemplate: {target: {pod: {name: p}}}}"),
            "storage goes with selector; with checkpointTemplate set checkpointTemplate.storage"),
        Arguments.of("spec.ttl with a template",
            schedule("ttl", "{schedule: '@daily', ttl: 1d, checkpointTemplate: {target: {pod: {name: p}}}}"),
            "ttl, retainArchive and backoffLimit go with selector; with checkpointTemplate set them in checkpointTemplate"),
        Arguments.of("schedule with template and selector", schedule("both",
            "{schedule: '@daily', selector: {matchLabels: {app: sim}}, checkpointTemplate: {target: {pod: {name: p}}}}"),
            "set exactly one of checkpointTemplate (a fixed target) or selector (pods by label)"),
        Arguments.of("schedule with neither template nor selector", schedule("neither", "{schedule: '@daily'}"),
            "set exactly one of checkpointTemplate (a fixed target) or selector (pods by label)"),
        Arguments.of("restore of a schedule's pod without the schedule", restore("nopodsched", "{scheduleRef: {pod: p}}"),
            "spec.scheduleRef.name: Required value"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("invalidResources")
  void refusedAtAdmission(String what, String manifest, String expected) throws Exception {
    Tool.Result result = kubectl.runWithInput(manifest, "apply", "-f", "-");
    assertThat(result.exitCode()).as(result.output()).isNotZero();
    assertThat(result.output()).contains(expected);
  }

  @Test
  void aCheckpointsTargetCannotChange() throws Exception {
    kubectl.runWithInput(checkpoint("fixed", "{target: {process: {node: node-a, pid: 42}}, storage: a}"), "apply", "-f", "-").ok();
    Tool.Result moved = kubectl.runWithInput(checkpoint("fixed", "{target: {process: {node: node-a, pid: 43}}, storage: a}"),
        "apply", "-f", "-");
    assertThat(moved.exitCode()).isNotZero();
    assertThat(moved.output()).contains("target is immutable: create a new Checkpoint instead");
    Tool.Result otherStorage = kubectl.runWithInput(
        checkpoint("fixed", "{target: {process: {node: node-a, pid: 42}}, storage: b}"), "apply", "-f", "-");
    assertThat(otherStorage.output()).contains("storage is immutable");
  }

  /** A field's own transition rule never runs when the field is added or removed; the spec's rules do. */
  @Test
  void optionsPlacementAndReferencesCannotBeAddedOrRemovedLater() throws Exception {
    kubectl.runWithInput(checkpoint("late", "{target: {process: {node: node-a, pid: 42}}}"), "apply", "-f", "-").ok();
    assertRefused(checkpoint("late", "{target: {process: {node: node-a, pid: 42}}, options: {leaveRunning: false}}"),
        "options are immutable: create a new Checkpoint instead");
    assertRefused(checkpoint("late", "{target: {process: {node: node-a, pid: 42}}, storage: b}"), "storage is immutable");
    kubectl.runWithInput(checkpoint("opts", "{target: {process: {node: node-a, pid: 42}}, options: {tcpEstablished: true}}"),
        "apply", "-f", "-").ok();
    assertRefused(checkpoint("opts", "{target: {process: {node: node-a, pid: 42}}}"), "options are immutable");

    kubectl.runWithInput(restore("late", "{checkpointRef: {name: a}}"), "apply", "-f", "-").ok();
    assertRefused(restore("late", "{checkpointRef: {name: a}, placement: {retryOtherNodes: true}}"),
        "placement is immutable: create a new Restore instead");
    kubectl.runWithInput(restore("swap", "{scheduleRef: {name: nightly}}"), "apply", "-f", "-").ok();
    assertRefused(restore("swap", "{checkpointRef: {name: a}}"), "scheduleRef is immutable");
  }

  private void assertRefused(String manifest, String expected) throws Exception {
    Tool.Result result = kubectl.runWithInput(manifest, "apply", "-f", "-");
    assertThat(result.exitCode()).as(result.output()).isNotZero();
    assertThat(result.output()).contains(expected);
  }

  @Test
  void aRestoresCheckpointCannotChange() throws Exception {
    kubectl.runWithInput(restore("fixed", "{checkpointRef: {name: a}}"), "apply", "-f", "-").ok();
    Tool.Result changed = kubectl.runWithInput(restore("fixed", "{checkpointRef: {name: b}}"), "apply", "-f", "-");
    assertThat(changed.exitCode()).isNotZero();
    assertThat(changed.output()).contains("checkpointRef is immutable: create a new Restore instead");
  }

  /** A Migration is one move: nothing of it changes once it began, not even a field added later. */
  @Test
  void aMigrationsSpecCannotChange() throws Exception {
    kubectl.runWithInput(migration("move", "{target: {process: {node: node-a, pid: 42}}}"), "apply", "-f", "-").ok();
    assertRefused(migration("move", "{target: {process: {node: node-a, pid: 43}}}"),
        "a Migration's spec is immutable: create a new Migration instead");
    assertRefused(migration("move", "{target: {process: {node: node-a, pid: 42}}, allowSourceNode: true}"),
        "a Migration's spec is immutable");
    assertRefused(migration("both", "{target: {process: {node: node-a, pid: 42}, pod: {name: sim-0}}}"),
        "set exactly one of target.process");
  }
}
