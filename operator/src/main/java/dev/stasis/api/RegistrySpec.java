package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;
import io.fabric8.generator.annotation.ValidationRule;

/** The OCI registry that pod checkpoints are pushed to as checkpoint images when they are restored. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "self.url.startsWith('https://') || (has(self.insecure) && self.insecure)",
    message = "a plain http:// registry url needs insecure: true")
public class RegistrySpec {
  public static final String USERNAME = "username";
  public static final String PASSWORD = "password";
  public static final String CA_CERTIFICATE = "ca.crt";

  @Required
  @Pattern("^https?://[^/]+(/[a-z0-9._/-]*)?$")
  @JsonPropertyDescription("Registry and repository prefix, e.g. https://registry.example.com/stasis. Images go to <url>/<namespace> (one repository per namespace), tagged <container>-<restore uid>.")
  public String url;

  @JsonPropertyDescription("Secret with the keys username and password to push with; empty for a registry that lets anyone push.")
  public SecretReference credentialsSecret;

  @JsonPropertyDescription("Secret with the key ca.crt: the CA (PEM) the registry's certificate must be signed by; default the system's CAs.")
  public SecretReference caSecret;

  @JsonPropertyDescription("Allow plain http:// and do not verify the registry's certificate. For test registries only.")
  public Boolean insecure;

  @Pattern(CheckpointSpec.DURATION_PATTERN)
  @JsonPropertyDescription("How long a checkpoint image stays in the registry once its restored pod runs, e.g. 10m (the default), 1h or 0s. It holds the container's memory in the clear: keep it short. Images of Restores that fail go at once, and those of a deleted Restore or Checkpoint with it.")
  public String imageGracePeriod;

  public static final String DEFAULT_IMAGE_GRACE_PERIOD = "10m";

  public String imageGracePeriodOrDefault() {
    return imageGracePeriod != null ? imageGracePeriod : DEFAULT_IMAGE_GRACE_PERIOD;
  }

  public boolean isInsecure() {
    return Boolean.TRUE.equals(insecure);
  }
}
