package dev.stasis.operator.retention;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.Restore;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.List;

/**
 * The Restores that may still read a Checkpoint's manifest or archive: every one of its namespace
 * that names it and has not finished. Deleting the Checkpoint (by a person, its ttl or a schedule's
 * retention) keeps the archive until they are done, so that no restore loses it halfway.
 */
public final class ArchiveReaders {
  private ArchiveReaders() {}

  public static List<Restore> of(KubernetesClient client, Checkpoint checkpoint) {
    String name = checkpoint.getMetadata().getName();
    return client.resources(Restore.class).inNamespace(checkpoint.getMetadata().getNamespace()).list().getItems()
        .stream()
        .filter(r -> name.equals(r.checkpointName()))
        .filter(r -> r.getStatus() == null || r.getStatus().phase == null || !r.getStatus().phase.isTerminal())
        .toList();
  }

  /** "Restore r (Restoring), Restore s (Pending)" for people. */
  public static String describe(List<Restore> readers) {
    return String.join(", ", readers.stream().map(r -> "Restore " + r.getMetadata().getName() + " ("
        + (r.getStatus() == null || r.getStatus().phase == null ? "Pending" : r.getStatus().phase) + ")").toList());
  }
}
