package dev.stasis.cli;

import io.fabric8.kubernetes.api.model.apiextensions.v1.CustomResourceDefinition;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** The CRDs generated into the jar at build time (the same files as {@code crds/}). */
public final class Crds {
  public static final List<String> NAMES = List.of(
      "checkpoints.stasis.dev", "restores.stasis.dev", "checkpointschedules.stasis.dev",
      "checkpointstorages.stasis.dev", "nodeprofiles.stasis.dev", "migrations.stasis.dev");

  private Crds() {}

  public static CustomResourceDefinition load(KubernetesClient client, String name) {
    String resource = "/META-INF/fabric8/" + name + "-v1.yml";
    try (InputStream in = Crds.class.getResourceAsStream(resource)) {
      if (in == null) {
        throw new IllegalStateException("CRD " + resource + " is missing from the jar: rebuild with mvn package");
      }
      return client.getKubernetesSerialization().unmarshal(in, CustomResourceDefinition.class);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Installs or updates every CRD and waits until the API server serves them. */
  public static void install(KubernetesClient client) {
    for (String name : NAMES) {
      CustomResourceDefinition crd = load(client, name);
      client.apiextensions().v1().customResourceDefinitions().resource(crd)
          .patch(PatchContext.of(PatchType.SERVER_SIDE_APPLY), crd);
    }
    for (String name : NAMES) {
      client.apiextensions().v1().customResourceDefinitions().withName(name).waitUntilCondition(
          crd -> crd != null && crd.getStatus() != null && crd.getStatus().getConditions().stream()
              .anyMatch(c -> "Established".equals(c.getType()) && "True".equals(c.getStatus())),
          30, TimeUnit.SECONDS);
    }
  }
}
