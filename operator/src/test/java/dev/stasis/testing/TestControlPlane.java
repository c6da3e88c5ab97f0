package dev.stasis.testing;

import dev.stasis.cli.ControlPlane;
import dev.stasis.cli.Crds;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.UUID;

/**
 * One real kube-apiserver + etcd (scripts/control-plane.sh, RBAC on) shared by the integration
 * tests of a test JVM, with the CRDs from the build installed. Tests isolate themselves by
 * namespace and node names; the control plane is stopped, by PID, when the JVM exits.
 */
public final class TestControlPlane {
  private static ControlPlane controlPlane;
  private static KubernetesClient admin;

  private TestControlPlane() {}

  public static synchronized KubernetesClient admin() throws Exception {
    if (admin == null) {
      Path repo = repoRoot();
      Path dir = Files.createTempDirectory(repo.resolve("operator/target"), "control-plane-");
      controlPlane = ControlPlane.start(repo.resolve("scripts/control-plane.sh"), dir);
      Runtime.getRuntime().addShutdownHook(new Thread(controlPlane::close, "control-plane-stop"));
      admin = newClient(controlPlane.kubeconfig());
      Crds.install(admin);
    }
    return admin;
  }

  public static synchronized Path kubeconfig() throws Exception {
    admin();
    return controlPlane.kubeconfig();
  }

  public static KubernetesClient newClient(Path kubeconfig) throws Exception {
    Config config = Config.fromKubeconfig(null, Files.readString(kubeconfig), kubeconfig.toString());
    return new KubernetesClientBuilder().withConfig(config).build();
  }

  /** A fresh namespace for one test. */
  public static String newNamespace(String prefix) throws Exception {
    return newNamespace(prefix, Map.of());
  }

  public static String newNamespace(String prefix, Map<String, String> labels) throws Exception {
    String name = prefix + "-" + UUID.randomUUID().toString().substring(0, 6);
    admin().namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(name).withLabels(labels)
        .endMetadata().build()).create();
    return name;
  }

  /** The runnable jar the build made ({@code mvn package}), as the images run it. */
  public static Path stasisJar() {
    return repoRoot().resolve("operator/target/stasis.jar");
  }

  public static Path repoRoot() {
    return Path.of(System.getProperty("stasis.repoRoot", "..")).toAbsolutePath().normalize();
  }
}
