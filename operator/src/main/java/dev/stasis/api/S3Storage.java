package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class S3Storage {
  @JsonPropertyDescription("S3 endpoint URL, e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000; empty for AWS' default.")
  @Pattern("^https?://.+")
  public String endpoint;

  @Required
  public String bucket;

  @JsonPropertyDescription("Key prefix under which archives are stored.")
  public String prefix;

  public String region;

  @JsonPropertyDescription("Use path-style addressing (most S3-compatible servers need it).")
  public Boolean pathStyle;

  @JsonPropertyDescription("Secret holding the access key (keys accessKeyId, secretAccessKey).")
  public SecretReference credentialsSecret;
}
