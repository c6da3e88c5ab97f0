package dev.stasis.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;

/**
 * What Flux makes of an object: sigs.k8s.io/cli-utils' kstatus, the library Flux's health checks
 * use, run as tools/kstatus (scripts/install-kstatus.sh builds it).
 */
public final class Kstatus {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final Tool kstatus;

  public Kstatus(Path kubeconfig) {
    this.kstatus = new Tool("kstatus", "--kubeconfig=" + kubeconfig);
  }

  /** Read from the API server, as Flux reads it; {@code namespace} null for a cluster-scoped kind. */
  public Result of(String resource, String namespace, String name) throws IOException, InterruptedException {
    return namespace == null ? parse(kstatus.run(null, resource, name))
        : parse(kstatus.run(null, "-n", namespace, resource, name));
  }

  /** Computed from {@code objectJson}, an object as the API server returned it. */
  public Result ofJson(String objectJson) throws IOException, InterruptedException {
    return parse(kstatus.run(objectJson, "-f", "-"));
  }

  private static Result parse(Tool.Result run) throws IOException {
    JsonNode result = JSON.readTree(run.ok().output());
    return new Result(result.path("status").asText(), result.path("message").asText());
  }

  /** InProgress, Current, Failed, Terminating or NotFound, and why. */
  public record Result(String status, String message) {}
}
