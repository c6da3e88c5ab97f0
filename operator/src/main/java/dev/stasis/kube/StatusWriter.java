package dev.stasis.kube;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.ConditionedStatus;
import dev.stasis.api.Conditions;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * Writes statuses with optimistic locking (PUT of the status subresource carrying the
 * resourceVersion that was read), so that the operator and an agent never overwrite each other's
 * fields: a writer holding a stale copy gets a 409 instead of silently winning.
 *
 * <p>Every status passes here, so here it gets what GitOps tools read: Ready, Reconciling and
 * Stalled from its phase, and the generation it was written for ({@link Conditions#summarize}).
 */
public class StatusWriter {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int CONFLICT_RETRIES = 10;

  private final KubernetesClient client;

  public StatusWriter(KubernetesClient client) {
    this.client = client;
  }

  /**
   * Replaces the status of the copy that was read with {@code newStatus}, built afresh, if it
   * differs: conditions that kept their status keep their transition time, so a pass that finds
   * nothing new writes nothing. A conflict is thrown to the caller: a reconciler then runs again on
   * fresh data.
   */
  public <S, R extends CustomResource<?, S>> R replace(R observed, S newStatus) {
    summarize(observed, newStatus);
    if (observed.getStatus() instanceof ConditionedStatus before && newStatus instanceof ConditionedStatus after) {
      Conditions.keepTransitionTimes(before.conditions(), after.conditions());
    }
    if (sameJson(observed.getStatus(), newStatus)) {
      return observed;
    }
    observed.setStatus(newStatus);
    return client.resource(observed).updateStatus();
  }

  /**
   * Applies {@code change} to the newest copy of the resource and writes its status, as long as
   * {@code precondition} holds for that copy; retries on conflicts, re-checking the precondition on
   * fresh data each time. Empty when the precondition no longer holds (someone else moved on) or
   * the resource is gone.
   * For the owner of a status, such as the agent while it works, whose cached copy may lag. The
   * change is applied to a copy: {@code resource} stays as it was read, whatever the write did, so
   * a caller may try again with it.
   */
  public <S, R extends CustomResource<?, S>> Optional<R> update(
      R resource, Predicate<R> precondition, Consumer<R> change) {
    R current = resource == null ? null : client.getKubernetesSerialization().clone(resource);
    for (int attempt = 0; ; attempt++) {
      if (current == null || !precondition.test(current)) {
        return Optional.empty();
      }
      try {
        change.accept(current);
        summarize(current, current.getStatus());
        return Optional.of(client.resource(current).updateStatus());
      } catch (KubernetesClientException e) {
        if (e.getCode() == HttpURLConnection.HTTP_NOT_FOUND) {
          return Optional.empty(); // deleted meanwhile: nothing left to write to
        }
        if (e.getCode() != HttpURLConnection.HTTP_CONFLICT || attempt >= CONFLICT_RETRIES) {
          throw e;
        }
        backOff(attempt);
        current = client.resource(resource).get();
      }
    }
  }

  private static void summarize(CustomResource<?, ?> resource, Object status) {
    if (status instanceof ConditionedStatus conditioned) {
      Conditions.summarize(conditioned, resource.getMetadata().getGeneration());
    }
  }

  /** Random, growing pauses, so that writers who collided do not collide again in lockstep. */
  private static void backOff(int attempt) {
    try {
      Thread.sleep(ThreadLocalRandom.current().nextLong(5, 20L * (attempt + 1)));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static boolean sameJson(Object a, Object b) {
    return JSON.valueToTree(a).equals(JSON.valueToTree(b));
  }
}
