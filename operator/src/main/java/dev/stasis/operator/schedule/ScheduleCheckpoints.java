package dev.stasis.operator.schedule;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.api.CheckpointTemplate;
import dev.stasis.kube.Labels;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Map;

/**
 * The Checkpoints of one schedule: labelled {@value Labels#SCHEDULE}, owned by the schedule (an
 * ownerReference for tools; deletion does not rely on it), and named after their run's time, so
 * that creating a run's Checkpoint twice is impossible.
 */
public final class ScheduleCheckpoints {
  /** The time a Checkpoint's run was due (RFC 3339). */
  public static final String SCHEDULED_TIME = "stasis.dev/scheduled-time";
  private static final DateTimeFormatter NAME_TIME = DateTimeFormatter.ofPattern("yyyyMMddHHmmss").withZone(ZoneOffset.UTC);

  private final KubernetesClient client;

  public ScheduleCheckpoints(KubernetesClient client) {
    this.client = client;
  }

  /** Read from the API server, not a cache: decisions on them must see the schedule's own last writes. */
  public List<Checkpoint> list(CheckpointSchedule schedule) {
    return client.resources(Checkpoint.class).inNamespace(schedule.getMetadata().getNamespace())
        .withLabel(Labels.SCHEDULE, schedule.getMetadata().getName()).list().getItems();
  }

  /** Creates the Checkpoint of the run due at {@code time}, unless it exists already; returns its name. */
  public String create(CheckpointSchedule schedule, CheckpointTemplate template, Instant time, String trigger) {
    String name = name(schedule, time, trigger);
    Checkpoint checkpoint = new Checkpoint();
    checkpoint.setMetadata(new ObjectMetaBuilder()
        .withName(name)
        .withNamespace(schedule.getMetadata().getNamespace())
        .withLabels(Map.of(Labels.SCHEDULE, schedule.getMetadata().getName(), Labels.TRIGGER, trigger))
        .withAnnotations(Map.of(SCHEDULED_TIME, time.toString()))
        .withOwnerReferences(ownerReference(schedule))
        .build());
    checkpoint.setSpec(template.toCheckpointSpec());
    try {
      client.resource(checkpoint).create();
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
        throw e;
      }
      // created by an earlier pass whose status write did not land: the same run, not a new one
    }
    return name;
  }

  public static String name(CheckpointSchedule schedule, Instant time, String trigger) {
    String infix = Labels.TRIGGER_DRAIN.equals(trigger) ? "-drain-" : "-";
    return schedule.getMetadata().getName() + infix + NAME_TIME.format(time);
  }

  /** blockOwnerDeletion false: a schedule's deletion never waits for its checkpoints. */
  public static OwnerReference ownerReference(CheckpointSchedule schedule) {
    return new OwnerReferenceBuilder()
        .withApiVersion(schedule.getApiVersion())
        .withKind(schedule.getKind())
        .withName(schedule.getMetadata().getName())
        .withUid(schedule.getMetadata().getUid())
        .withController(true)
        .withBlockOwnerDeletion(false)
        .build();
  }

  public static boolean isOwnedBy(Checkpoint checkpoint, CheckpointSchedule schedule) {
    var refs = checkpoint.getMetadata().getOwnerReferences();
    return refs != null && refs.stream().anyMatch(r -> schedule.getMetadata().getUid().equals(r.getUid()));
  }
}
