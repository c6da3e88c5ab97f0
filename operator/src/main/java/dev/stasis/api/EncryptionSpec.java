package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;

/**
 * Client-side encryption of the archives of a storage. The Secret holds every key by its id; new
 * archives use the current one, and each manifest names its key, so that rotating (adding a key
 * and making it current) leaves older archives readable as long as their key stays in the Secret.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class EncryptionSpec {
  @Required
  @JsonPropertyDescription("Secret whose data holds the keys: each entry's name is a key id, its value 32 random bytes"
      + " (or their base64). Keep every key an archive still needs.")
  public SecretReference keySecretRef;

  @Required
  @Pattern("^[-._a-zA-Z0-9]+$")
  @JsonPropertyDescription("Id of the key new archives are encrypted with: an entry of the Secret.")
  public String currentKeyId;

  public EncryptionSpec() {}

  public EncryptionSpec(SecretReference keySecretRef, String currentKeyId) {
    this.keySecretRef = keySecretRef;
    this.currentKeyId = currentKeyId;
  }
}
