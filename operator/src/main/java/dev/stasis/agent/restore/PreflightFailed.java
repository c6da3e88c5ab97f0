package dev.stasis.agent.restore;

import dev.stasis.agent.WorkFailure;

/** The pre-flight found that this node cannot run the checkpoint; nothing was restored. */
class PreflightFailed extends WorkFailure {
  PreflightFailed(String reason, String message) {
    super(reason, message);
  }
}
