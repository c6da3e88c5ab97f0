package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;

/** Whether the node's agent is alive: it renews {@link #heartbeatTime} while it runs. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class NodeProfileStatus {
  /**
   * When the agent last said it runs (RFC 3339), renewed every 20 s. The operator gives up on
   * work assigned to a node whose agent has not been seen for five minutes, and places no restore
   * there.
   */
  public String heartbeatTime;
}
