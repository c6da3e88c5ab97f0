package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Required;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class SecretReference {
  @Required
  public String name;

  @Required
  @JsonPropertyDescription("Namespace of the Secret (storages are cluster-scoped).")
  public String namespace;

  public SecretReference() {}

  public SecretReference(String name, String namespace) {
    this.name = name;
    this.namespace = namespace;
  }
}
