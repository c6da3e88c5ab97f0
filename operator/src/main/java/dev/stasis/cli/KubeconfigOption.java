package dev.stasis.cli;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The cluster a command talks to. */
final class KubeconfigOption {
  @Option(names = "--kubeconfig", paramLabel = "FILE", converter = Converters.ReadableFile.class, order = 80,
      description = "Kubeconfig of the cluster (default: $KUBECONFIG, ~/.kube/config, or the pod's ServiceAccount).")
  Path kubeconfig;

  KubernetesClient client() throws IOException {
    return client(null);
  }

  /** @param context the kubeconfig's context to use; null: its current one */
  KubernetesClient client(String context) throws IOException {
    Config config = kubeconfig == null
        ? Config.autoConfigure(context)
        : Config.fromKubeconfig(context, Files.readString(kubeconfig), kubeconfig.toString());
    return new KubernetesClientBuilder().withConfig(config).build();
  }
}
