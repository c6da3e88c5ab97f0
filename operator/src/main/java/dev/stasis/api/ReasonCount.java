package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;

/** How many nodes or pods one reason left out, where a status cannot list them all. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ReasonCount {
  public String reason;
  public Integer count;

  public ReasonCount() {}

  public ReasonCount(String reason, int count) {
    this.reason = reason;
    this.count = count;
  }
}
