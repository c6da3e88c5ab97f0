package dev.stasis.e2e;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointScheduleSpec;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.EncryptionSpec;
import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.api.RestorePhase;
import dev.stasis.api.SecretReference;
import dev.stasis.cli.Main;
import dev.stasis.kube.AgentHeartbeat;
import dev.stasis.kube.Labels;
import dev.stasis.kube.NodeKey;
import dev.stasis.kube.StorageBinding;
import dev.stasis.kube.WorkGrants;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.S3Server;
import dev.stasis.testing.ServiceAccounts;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.authentication.SelfSubjectReviewBuilder;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectAccessReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The operator and an agent run as their ServiceAccounts with config/rbac/ on the RBAC-enabled
 * API server: that is enough for a real checkpoint and restore, and not more.
 */
class RbacIT {
  static final Duration TIMEOUT = Duration.ofSeconds(60);
  static final String SYSTEM = "stasis-system";
  static final String NODE = "rbac-" + UUID.randomUUID().toString().substring(0, 6);
  static final String OTHER_NODE = NODE + "-other";

  static KubernetesClient admin;
  static KubernetesClient operator;
  static KubernetesClient agent;
  static S3Server s3;
  static InProcessStasis stasis;
  @TempDir static Path dir;

  @BeforeAll
  static void startAsServiceAccounts() throws Exception {
    admin = TestControlPlane.admin();
    new Kubectl(TestControlPlane.kubeconfig()).run("apply", "-k", "config/rbac").ok();
    var node = admin.nodes().resource(new NodeBuilder().withNewMetadata().withName(NODE).endMetadata().build()).create();
    admin.nodes().resource(new NodeBuilder().withNewMetadata().withName(OTHER_NODE).endMetadata().build()).create();
    operator = ServiceAccounts.clientWithToken(admin, ServiceAccounts.token(admin, "stasis-operator", null));
    agent = ServiceAccounts.clientWithToken(admin, ServiceAccounts.token(admin, "stasis-agent", node));
    s3 = S3Server.start();
    s3.createBucket("rbac");
    stasis = InProcessStasis.on(admin).operatorClient(operator)
        .agent(NODE, dir.resolve("work"), Main.criuPath(null), agent).start();
    await().atMost(TIMEOUT).until(() -> admin.resources(NodeProfile.class).withName(NODE).get() != null);
  }

  @AfterAll
  static void stop() throws Exception {
    if (stasis != null) stasis.close();
    if (s3 != null) s3.close();
  }

  @Test
  void theirRbacIsEnoughForACheckpointAndARestore() throws Exception {
    String storage = "rbac-fs-" + NODE;
    TestStorage.filesystem(storage, dir.resolve("archives")).create(admin);
    awaitStoragePhase(storage, "Available");
    String ns = TestControlPlane.newNamespace("rbac");
    try (var counter = Workloads.startInPidNamespace("counter", dir.resolve("count.txt").toString())) {
      Checkpoint c = new Checkpoint();
      c.setMetadata(new ObjectMetaBuilder().withName("c").withNamespace(ns).build());
      c.setSpec(new CheckpointSpec(CheckpointTarget.process(NODE, (int) counter.pid())));
      c.getSpec().storage = storage;
      admin.resource(c).create();
      await().atMost(TIMEOUT).until(() -> phase(ns, "c") == CheckpointPhase.Completed
          || phase(ns, "c") == CheckpointPhase.Failed);
      assertThat(admin.resources(Checkpoint.class).inNamespace(ns).withName("c").get().getStatus().message)
          .as("checkpoint as ServiceAccounts").startsWith("stored");
    }
    restoresAndEnds(ns, "c");
  }

  /**
   * The agent reads no Secret, not even in stasis-system: the operator hands it what a checkpoint
   * and a restore need (the S3 credentials, the keys of exactly that archive) sealed to its node's
   * key. An encrypted checkpoint on S3 and its restore work that way; the grant in the status opens
   * with no other node's key.
   */
  @Test
  void theAgentReadsNoSecretAndWorksWithWhatItsWorkIsGranted() throws Exception {
    String storage = "rbac-enc-" + NODE;
    byte[] key = new byte[32];
    new java.security.SecureRandom().nextBytes(key);
    admin.resource(new SecretBuilder().withNewMetadata().withName(storage + "-keys").withNamespace(SYSTEM).endMetadata()
        .withData(Map.of("k1", java.util.Base64.getEncoder().encodeToString(key))).build()).create();
    s3Storage(storage).credentials(SYSTEM, s3Keys())
        .with(spec -> spec.encryption = new EncryptionSpec(new SecretReference(storage + "-keys", SYSTEM), "k1"))
        .create(admin);
    awaitStoragePhase(storage, "Available");
    assertForbidden(() -> agent.secrets().inNamespace(SYSTEM).withName(storage).get());
    assertForbidden(() -> agent.secrets().inNamespace(SYSTEM).withName(storage + "-keys").get());
    assertForbidden(() -> agent.secrets().inNamespace(SYSTEM).list());

    String ns = TestControlPlane.newNamespace("rbac-enc");
    Checkpoint done;
    try (var counter = Workloads.startInPidNamespace("counter", dir.resolve("enc-count.txt").toString())) {
      Checkpoint c = new Checkpoint();
      c.setMetadata(new ObjectMetaBuilder().withName("c").withNamespace(ns).build());
      c.setSpec(new CheckpointSpec(CheckpointTarget.process(NODE, (int) counter.pid())));
      c.getSpec().storage = storage;
      admin.resource(c).create();
      await().atMost(TIMEOUT).until(() -> phase(ns, "c") == CheckpointPhase.Completed
          || phase(ns, "c") == CheckpointPhase.Failed);
      done = admin.resources(Checkpoint.class).inNamespace(ns).withName("c").get();
      assertThat(done.getStatus().phase).as(done.getStatus().message).isEqualTo(CheckpointPhase.Completed);
    }
    assertThat(done.getStatus().grant.nodeKey).isEqualTo(
        NodeKey.fingerprint(admin.resources(NodeProfile.class).withName(NODE).get().getSpec().grantKey));
    Checkpoint granted = done;
    assertThatThrownBy(() -> WorkGrants.open(granted.getStatus().grant, NodeKey.inWorkDir(dir.resolve("other-node")),
        granted, OTHER_NODE)).as("another node's agent").isInstanceOf(WorkGrants.GrantException.class);

    restoresAndEnds(ns, "c");
  }

  @Test
  void theOperatorReadsOnlyTheStorageSecretsOfItsNamespace() throws Exception {
    s3Storage("rbac-s3-ok-" + NODE).credentials(SYSTEM, s3Keys()).create(admin);
    s3Storage("rbac-s3-elsewhere-" + NODE).credentials("default", s3Keys()).create(admin);
    awaitStoragePhase("rbac-s3-ok-" + NODE, "Available");
    awaitStoragePhase("rbac-s3-elsewhere-" + NODE, "Unavailable");
    assertThat(admin.resources(CheckpointStorage.class).withName("rbac-s3-elsewhere-" + NODE).get().getStatus().message)
        .contains("cannot read Secret default/rbac-s3-elsewhere-" + NODE).contains("forbidden");
    assertForbidden(() -> operator.secrets().inNamespace("kube-system").list());
    assertForbidden(() -> operator.secrets().inNamespace("default").withName("s3-elsewhere").get());
    assertForbidden(() -> operator.nodes().withName(NODE).delete());
    // it lists pods (for schedules' selectors) but neither watches nor changes them
    for (String verb : List.of("watch", "update", "patch")) {
      var review = operator.authorization().v1().selfSubjectAccessReview().create(new SelfSubjectAccessReviewBuilder()
          .withNewSpec().withNewResourceAttributes().withResource("pods").withVerb(verb).withNamespace("default")
          .endResourceAttributes().endSpec().build());
      assertThat(review.getStatus().getAllowed()).as(verb + " pods").isFalse();
    }
  }

  @Test
  void theOperatorMayListThePodsAScheduleSelects() throws Exception {
    String ns = TestControlPlane.newNamespace("rbac-sel");
    CheckpointSchedule schedule = new CheckpointSchedule();
    schedule.setMetadata(new ObjectMetaBuilder().withName("sim").withNamespace(ns).build());
    schedule.setSpec(new CheckpointScheduleSpec());
    schedule.getSpec().schedule = "@every 2s";
    schedule.getSpec().selector = new LabelSelector(null, Map.of("app", "sim"));
    admin.resource(schedule).create();
    // the listing worked (an HTTP 403 would leave the schedule without status): it found no pods
    await().atMost(TIMEOUT).until(() -> {
      var status = admin.resource(schedule).get().getStatus();
      return status != null && status.selectedPods != null;
    });
    assertThat(admin.resource(schedule).get().getStatus().conditions)
        .anyMatch(c -> c.getType().equals("PodsSelected") && c.getReason().equals("NoPodsSelected"));
  }

  @Test
  void theAgentCannotTouchAnotherNodesWork() throws Exception {
    String ns = TestControlPlane.newNamespace("rbac-other");
    Checkpoint c = new Checkpoint();
    c.setMetadata(new ObjectMetaBuilder().withName("theirs").withNamespace(ns)
        .withLabels(Map.of(Labels.NODE, OTHER_NODE)).build());
    c.setSpec(new CheckpointSpec(CheckpointTarget.process(OTHER_NODE, 4242)));
    admin.resource(c).create();
    assertThat(agent.resources(Checkpoint.class).inNamespace(ns).withName("theirs").get()).as("it may read").isNotNull();
    // A merge patch carries no resourceVersion: the operator reconciling the same object cannot
    // turn the expected refusal into a conflict.
    assertThatThrownBy(() -> agent.resources(Checkpoint.class).inNamespace(ns).withName("theirs").subresource("status")
        .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"status\":{\"phase\":\"Completed\"}}"))
        .isInstanceOf(KubernetesClientException.class)
        .hasMessageContaining("may only act on its own node's work");

    NodeProfile foreign = new NodeProfile();
    foreign.setMetadata(new ObjectMetaBuilder().withName(OTHER_NODE).build());
    foreign.setSpec(new NodeProfileSpec());
    assertThatThrownBy(() -> agent.resource(foreign).create())
        .isInstanceOf(KubernetesClientException.class)
        .hasMessageContaining("may only act on its own node's work");

    admin.resource(foreign).create();
    assertThatThrownBy(() -> AgentHeartbeat.renew(agent, OTHER_NODE, Instant.now()))
        .as("keeping another node's agent alive").isInstanceOf(KubernetesClientException.class)
        .hasMessageContaining("may only act on its own node's work");

    assertForbidden(() -> agent.secrets().inNamespace("default").list());
    assertForbidden(() -> agent.resources(Checkpoint.class).inNamespace(ns).withName("theirs").delete());
  }

  @Test
  void theAgentRenewsItsHeartbeatUnderItsOwnRbac() {
    await().atMost(TIMEOUT).untilAsserted(() -> {
      var status = admin.resources(NodeProfile.class).withName(NODE).get().getStatus();
      assertThat(status).isNotNull();
      assertThat(Duration.between(Instant.parse(status.heartbeatTime), Instant.now()))
          .isLessThan(AgentHeartbeat.INTERVAL.multipliedBy(2));
    });
  }

  /**
   * The DaemonSet's agents use their pods' projected tokens, bound to the Pod, not to the Node: the
   * API server adds the pod's node to those too (Kubernetes 1.30+), so the admission policy holds.
   */
  @Test
  void aPodBoundTokenNamesItsNodeForTheAdmissionPolicy() throws Exception {
    var pod = admin.pods().inNamespace(SYSTEM).resource(new PodBuilder()
        .withNewMetadata().withName("stasis-agent-" + NODE).endMetadata()
        .withNewSpec().withNodeName(NODE).withServiceAccountName("stasis-agent")
        .addNewContainer().withName("agent").withImage("stasis-agent:0.1.0").endContainer().endSpec()
        .build()).create();
    try (KubernetesClient podAgent = ServiceAccounts.clientWithToken(admin, ServiceAccounts.token(admin, "stasis-agent", pod))) {
      var review = podAgent.authentication().v1().selfSubjectReviews()
          .create(new SelfSubjectReviewBuilder().build()).getStatus().getUserInfo();
      assertThat(review.getExtra()).containsEntry("authentication.kubernetes.io/node-name", List.of(NODE));

      // its own node's profile: allowed (a patch: the agent's heartbeat may have written its status meanwhile)
      podAgent.resources(NodeProfile.class).withName(NODE).edit(own -> {
        own.getMetadata().setLabels(Map.of("stasis.dev/checked", "pod-token"));
        return own;
      });

      NodeProfile foreign = new NodeProfile();
      foreign.setMetadata(new ObjectMetaBuilder().withName(OTHER_NODE).build());
      foreign.setSpec(new NodeProfileSpec());
      assertThatThrownBy(() -> podAgent.resource(foreign).create())
          .isInstanceOf(KubernetesClientException.class)
          .hasMessageContaining("the agent of node " + NODE + " may only act on its own node's work");
    } finally {
      admin.resource(pod).withGracePeriod(0).delete();
    }
  }

  // --- helpers ---

  /** Restores Checkpoint {@code checkpoint} of {@code ns}, expects it Completed, and ends the restored tree. */
  static void restoresAndEnds(String ns, String checkpoint) {
    var restore = new dev.stasis.api.Restore();
    restore.setMetadata(new ObjectMetaBuilder().withName("r").withNamespace(ns).build());
    restore.setSpec(new dev.stasis.api.RestoreSpec());
    restore.getSpec().checkpointRef = new dev.stasis.api.CheckpointRef(checkpoint);
    admin.resource(restore).create();
    await().atMost(TIMEOUT).until(() -> {
      var r = admin.resources(dev.stasis.api.Restore.class).inNamespace(ns).withName("r").get();
      return r.getStatus() != null && r.getStatus().phase != null && r.getStatus().phase.isTerminal();
    });
    var restored = admin.resources(dev.stasis.api.Restore.class).inNamespace(ns).withName("r").get();
    assertThat(restored.getStatus().phase).as(restored.getStatus().message).isEqualTo(RestorePhase.Completed);
    Workloads.kill(restored.getStatus().restoredPid);
  }

  static void assertForbidden(Runnable call) {
    assertThatThrownBy(call::run).isInstanceOfSatisfying(KubernetesClientException.class,
        e -> assertThat(e.getCode()).isEqualTo(403));
  }

  static TestStorage s3Storage(String name) {
    return TestStorage.s3(name, s3.endpoint(), "rbac");
  }

  static Map<String, String> s3Keys() {
    return Map.of(StorageBinding.ACCESS_KEY_ID, s3.accessKey(), StorageBinding.SECRET_ACCESS_KEY, s3.secretKey());
  }

  static void awaitStoragePhase(String name, String phase) {
    TestStorage.awaitPhase(admin, name, phase, TIMEOUT);
  }

  static CheckpointPhase phase(String ns, String name) {
    Checkpoint c = admin.resources(Checkpoint.class).inNamespace(ns).withName(name).get();
    return c.getStatus() == null ? null : c.getStatus().phase;
  }
}
