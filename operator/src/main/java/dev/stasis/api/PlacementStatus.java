package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.ArrayList;
import java.util.List;

/** Why a Restore runs where it does, or why it can run nowhere, as the scheduler would say it. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class PlacementStatus {
  /** One line: the chosen node and why, or "0/N nodes can run this checkpoint: ..." */
  public String summary;
  /** How many nodes were considered. */
  public Integer candidates;
  /** Every node that cannot run the checkpoint, with every reason. */
  public List<NodeRejection> rejected = new ArrayList<>();
  /** Nodes whose pre-flight check failed for this Restore; never chosen again. */
  public List<PreflightFailure> preflightFailures = new ArrayList<>();

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class NodeRejection {
    public String node;
    public List<String> reasons = new ArrayList<>();

    public NodeRejection() {}

    public NodeRejection(String node, List<String> reasons) {
      this.node = node;
      this.reasons = new ArrayList<>(reasons);
    }
  }

  @JsonInclude(JsonInclude.Include.NON_NULL)
  public static class PreflightFailure {
    public String node;
    public String reason;
    public String message;

    public PreflightFailure() {}

    public PreflightFailure(String node, String reason, String message) {
      this.node = node;
      this.reason = reason;
      this.message = message;
    }
  }
}
