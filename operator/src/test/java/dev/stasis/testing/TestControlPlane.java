package dev.stasis.testing;

import dev.stasis.cli.ControlPlane;
import dev.stasis.cli.Crds;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

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
    String name = prefix + "-" + UUID.randomUUID().toString().substring(0, 6);
    admin().namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(name).endMetadata().build())
        .create();
    return name;
  }

  /** Runs the kubectl that scripts/control-plane.sh built against this control plane; its output. */
  public static String kubectl(String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(kubectlBinary().toString(), "--kubeconfig", kubeconfig().toString()));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      p.destroyForcibly();
      throw new IllegalStateException(String.join(" ", command) + " failed:\n" + output);
    }
    return output;
  }

  /** $STASIS_CACHE/k8s/VERSION/kubectl, the newest version there (the script caches one per version). */
  private static Path kubectlBinary() throws IOException {
    Path cache = Path.of(System.getenv().getOrDefault("STASIS_CACHE", System.getProperty("user.home") + "/.cache/stasis"), "k8s");
    try (Stream<Path> versions = Files.list(cache)) {
      return versions.filter(v -> Character.isDigit(v.getFileName().toString().charAt(0)))
          .map(v -> v.resolve("kubectl")).filter(Files::isExecutable)
          .max(Comparator.comparing(Path::toString))
          .orElseThrow(() -> new IOException("no kubectl under " + cache + ": run scripts/control-plane.sh install"));
    }
  }

  public static Path repoRoot() {
    return Path.of(System.getProperty("stasis.repoRoot", "..")).toAbsolutePath().normalize();
  }
}
