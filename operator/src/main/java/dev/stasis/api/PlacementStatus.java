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
  /**
   * Nodes that cannot run the checkpoint, with every reason: the first {@value StatusLimits#MAX_LISTED};
   * {@link #rejectedCount} says how many there were, {@link #rejectedReasons} why.
   */
  public List<NodeRejection> rejected = new ArrayList<>();
  /** How many nodes cannot run the checkpoint. */
  public Integer rejectedCount;
  /** How many nodes each reason rejected, most first; the {@value StatusLimits#MAX_REASONS} most frequent reasons. */
  public List<ReasonCount> rejectedReasons = new ArrayList<>();
  /**
   * Nodes whose pre-flight check failed for this Restore; never chosen again. At most
   * {@value #MAX_PREFLIGHT_FAILURES}: spec.placement.retryOtherNodes tries no more nodes than that.
   */
  public List<PreflightFailure> preflightFailures = new ArrayList<>();

  public static final int MAX_PREFLIGHT_FAILURES = 10;


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
      this.message = StatusLimits.shorten(message, StatusLimits.MAX_MESSAGE_CHARS);
    }
  }
}
