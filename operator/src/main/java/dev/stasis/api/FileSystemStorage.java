package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Pattern;
import io.fabric8.generator.annotation.Required;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class FileSystemStorage {
  @Required
  @Pattern("^/.*")
  @JsonPropertyDescription("Absolute path, shared by every node that checkpoints or restores (single-node clusters, or a shared mount).")
  public String path;

  public FileSystemStorage() {}

  public FileSystemStorage(String path) {
    this.path = path;
  }
}
