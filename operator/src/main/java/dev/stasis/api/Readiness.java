package dev.stasis.api;

/**
 * Where a resource stands, as GitOps tools read it: still being worked on, ready, or stalled until
 * someone changes something. Each status says it of its own phase ({@link ConditionedStatus#readiness});
 * {@link Conditions#summarize} turns it into the conditions kstatus (Flux) and Argo CD's health
 * checks read: {@code Ready}, and {@code Reconciling} or {@code Stalled} while they are true.
 *
 * @param reason CamelCase, never empty: the condition's reason
 * @param message what a person reads in {@code kubectl describe}, Flux and Argo CD
 */
public record Readiness(State state, String reason, String message) {
  public enum State {
    /** Work is under way, or waits for something that comes by itself (a retry, a node's slot). */
    RECONCILING,
    /** Done as the spec asks: a completed checkpoint or restore, a schedule that runs, a storage that works. */
    READY,
    /** Failed, and stays so until the spec (or the world, for a storage) changes. */
    STALLED
  }

  public static Readiness reconciling(String reason, String message) {
    return new Readiness(State.RECONCILING, reason, message);
  }

  public static Readiness ready(String reason, String message) {
    return new Readiness(State.READY, reason, message);
  }

  public static Readiness stalled(String reason, String message) {
    return new Readiness(State.STALLED, reason, message);
  }
}
