package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.testing.Kubectl;
import dev.stasis.testing.TestControlPlane;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.dsl.NonDeletingOperation;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** What a user does with kubectl (and a GitOps tool does through the same API) works on the real API server. */
class KubectlIT {
  static Kubectl kubectl;

  @BeforeAll
  static void controlPlane() throws Exception {
    kubectl = new Kubectl(TestControlPlane.kubeconfig());
    TestControlPlane.admin().namespaces()
        .resource(new NamespaceBuilder().withNewMetadata().withName("stasis-system").endMetadata().build())
        .createOr(NonDeletingOperation::update);
  }

  @Test
  void samplesApplyClientSideAndServerSideAndReapplyingChangesNothing() throws Exception {
    String created = kubectl.run("apply", "-f", "config/samples/").ok().output();
    assertThat(created).contains("checkpoint.stasis.dev/counter", "restore.stasis.dev/counter",
        "checkpointschedule.stasis.dev/nightly", "checkpointstorage.stasis.dev/scratch", "checkpointstorage.stasis.dev/s3",
        "migration.stasis.dev/counter-move", "checkpointschedule.stasis.dev/keep-alive");

    String again = kubectl.run("apply", "-f", "config/samples/").ok().output();
    assertThat(again.lines().filter(l -> l.contains("stasis.dev")))
        .as("re-applying the same manifests is a no-op")
        .allMatch(l -> l.endsWith(" unchanged"));

    String serverSide = kubectl.run("apply", "--server-side", "--force-conflicts", "-f", "config/samples/").ok().output();
    assertThat(serverSide).contains("checkpoint.stasis.dev/counter serverside-applied");
    kubectl.run("delete", "-f", "config/samples/", "--wait=false").ok();
  }

  @Test
  void getShowsThePrinterColumnsOfEveryKind() throws Exception {
    kubectl.run("get", "ckpt,rst,ckptsched,ckptstore,nodeprof,mig", "-A").ok();
    assertThat(kubectl.run("api-resources", "--api-group=stasis.dev").ok().output())
        .contains("ckpt", "rst", "ckptsched", "ckptstore", "nodeprof", "mig");
    kubectl.run("apply", "-f", "config/samples/checkpoint.yaml", "-f", "config/samples/storage-filesystem.yaml",
        "-f", "config/samples/schedule.yaml", "-f", "config/samples/restore.yaml", "-f", "config/samples/migration.yaml").ok();
    // Left to right as a user reads them, not as the CRD generator sorts them (by JSON path: AGE first).
    assertThat(kubectl.run("get", "ckpt", "counter").ok().output().lines().findFirst().orElseThrow())
        .matches("NAME +TARGET +NODE +PHASE +PROGRESS +STORED +NEW +AGE");
    assertThat(kubectl.run("get", "ckpt", "counter", "-o", "wide").ok().output().lines().findFirst().orElseThrow())
        .matches("NAME +TARGET +NODE +PHASE +PROGRESS +STORED +NEW +REASON +AGE");
    assertThat(kubectl.run("get", "rst", "counter").ok().output().lines().findFirst().orElseThrow())
        .matches("NAME +CHECKPOINT +NODE +PHASE +PROGRESS +PID +POD +AGE");
    assertThat(kubectl.run("get", "ckptstore", "scratch").ok().output().lines().findFirst().orElseThrow())
        .matches("NAME +LOCATION +DEFAULT +PHASE +STORED +DEDUP +AGE");
    assertThat(kubectl.run("get", "ckptsched", "nightly").ok().output().lines().findFirst().orElseThrow())
        .contains("SCHEDULE", "SUSPEND");
    assertThat(kubectl.run("get", "mig", "counter-move").ok().output().lines().findFirst().orElseThrow())
        .contains("PHASE", "FROM", "TO", "FROZEN", "AGE");
    assertThat(kubectl.run("get", "nodeprof").ok().output()).satisfiesAnyOf(
        o -> assertThat(o).contains("ARCH", "CPU", "CRIU", "KERNEL"),
        o -> assertThat(o).contains("No resources found"));
    kubectl.run("delete", "-f", "config/samples/checkpoint.yaml", "-f", "config/samples/storage-filesystem.yaml",
        "-f", "config/samples/schedule.yaml", "-f", "config/samples/restore.yaml", "-f", "config/samples/migration.yaml",
        "--wait=false").ok();
  }
}
