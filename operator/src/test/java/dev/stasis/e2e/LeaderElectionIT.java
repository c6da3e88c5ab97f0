package dev.stasis.e2e;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.Kubectl;
import dev.stasis.testing.ServiceAccounts;
import dev.stasis.testing.TestControlPlane;
import io.fabric8.kubernetes.api.model.coordination.v1.Lease;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.javaoperatorsdk.operator.api.config.LeaderElectionConfiguration;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two operator replicas as the stasis-operator ServiceAccount (config/rbac, with its Lease Role):
 * one leads and reconciles, the other stands by, ready, and takes over when the leader stops.
 */
class LeaderElectionIT {
  static final Duration TIMEOUT = Duration.ofSeconds(60);

  @TempDir Path dir;

  @Test
  void aStandbyReplicaTakesOverWhenTheLeaderStops() throws Exception {
    KubernetesClient admin = TestControlPlane.admin();
    new Kubectl(TestControlPlane.kubeconfig()).run("apply", "-k", "config/rbac").ok();
    KubernetesClient operatorAccount = ServiceAccounts.clientWithToken(admin,
        ServiceAccounts.token(admin, "stasis-operator", null));
    String lease = "stasis-operator-" + UUID.randomUUID().toString().substring(0, 6);

    InProcessStasis first = replica(admin, operatorAccount, lease, "replica-a");
    InProcessStasis second = null;
    try {
      await().atMost(TIMEOUT).until(() -> "replica-a".equals(holder(admin, lease)));
      second = replica(admin, operatorAccount, lease, "replica-b");
      InProcessStasis standby = second;
      await().atMost(TIMEOUT).until(() -> standby.operatorNotReadyBecause().isEmpty());
      assertThat(holder(admin, lease)).as("the standby does not take the Lease").isEqualTo("replica-a");

      String before = createStorage(admin, lease + "-a");
      await().atMost(TIMEOUT).until(() -> reportedBy(admin, before) != null);
      assertThat(reportedBy(admin, before)).as("only the leader reconciles").isEqualTo("replica-a");

      long stopped = System.nanoTime();
      first.close();
      await().atMost(TIMEOUT).until(() -> "replica-b".equals(holder(admin, lease)));
      System.out.printf("leadership moved in %d ms%n", Duration.ofNanos(System.nanoTime() - stopped).toMillis());
      String after = createStorage(admin, lease + "-b");
      await().atMost(TIMEOUT).until(() -> reportedBy(admin, after) != null);
      assertThat(reportedBy(admin, after)).isEqualTo("replica-b");
    } finally {
      first.close();
      if (second != null) {
        second.close();
      }
    }
  }

  private static InProcessStasis replica(KubernetesClient admin, KubernetesClient client, String lease, String name) {
    // Short terms keep the test quick; a replica that loses the Lease must not end the test JVM.
    var election = new LeaderElectionConfiguration(lease, ServiceAccounts.NAMESPACE, Duration.ofSeconds(4),
        Duration.ofSeconds(3), Duration.ofMillis(500), name, null, false);
    return InProcessStasis.on(admin).operatorClient(client).leaderElection(name, election).start();
  }

  private static String holder(KubernetesClient admin, String lease) {
    Lease l = admin.leases().inNamespace(ServiceAccounts.NAMESPACE).withName(lease).get();
    return l == null || l.getSpec() == null ? null : l.getSpec().getHolderIdentity();
  }

  private String createStorage(KubernetesClient admin, String name) {
    TestStorage.filesystem(name, dir.resolve(name)).create(admin);
    return name;
  }

  /** The operator replica whose check of the storage reported it Available. */
  private static String reportedBy(KubernetesClient admin, String storage) {
    return admin.v1().events().inAnyNamespace().list().getItems().stream()
        .filter(e -> storage.equals(e.getInvolvedObject().getName()) && "Available".equals(e.getReason()))
        .map(e -> e.getReportingInstance()).findFirst().orElse(null);
  }
}
