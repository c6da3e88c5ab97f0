package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.Default;
import java.util.List;
import java.util.Map;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class RestorePlacement {
  @JsonPropertyDescription("Restore on this node; it must be able to run the checkpoint. Default: the source node, else a compatible node.")
  public String nodeName;

  @JsonPropertyDescription("Only nodes whose NodeProfile carries all of these labels (kubectl get nodeprof --show-labels).")
  public Map<String, String> nodeSelector;

  @JsonPropertyDescription("Never these nodes, whatever they offer (a Migration adds its source node here).")
  public List<String> excludeNodes;

  @Default("Compatible")
  @JsonPropertyDescription("Compatible: same arch, a superset of the source's CPU flags, CRIU at least the source's, same runtime. Strict: also the same CPU model, kernel, OS and CRIU features.")
  public Compatibility compatibility;

  @JsonPropertyDescription("When the pre-flight check fails on the chosen node, try the next compatible node instead of failing.")
  public Boolean retryOtherNodes;

  public Compatibility compatibilityOrDefault() {
    return compatibility != null ? compatibility : Compatibility.Compatible;
  }

  public boolean retryOtherNodes() {
    return Boolean.TRUE.equals(retryOtherNodes);
  }
}
