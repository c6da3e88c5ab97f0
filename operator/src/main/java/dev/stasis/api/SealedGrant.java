package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * What the operator gives the agent of a node for one Checkpoint or Restore (storage credentials,
 * the keys of its archives), encrypted to the public key that node's agent published: no one else,
 * other agents included, can read it, and it opens for this resource only.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class SealedGrant {
  /** The fingerprint of the node key it is sealed to. */
  public String nodeKey;
  /** The sealed bytes, base64. */
  public String sealed;

  public SealedGrant() {}

  public SealedGrant(String nodeKey, String sealed) {
    this.nodeKey = nodeKey;
    this.sealed = sealed;
  }
}
