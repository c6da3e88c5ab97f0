package dev.stasis.operator.schedule;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointSchedule;
import dev.stasis.kube.Labels;
import dev.stasis.kube.Names;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The Checkpoints of one schedule: labelled {@value Labels#SCHEDULE} (and {@value Labels#POD} when
 * the schedule selects pods), owned by the schedule (an ownerReference for tools; deletion does not
 * rely on it), and named after their run's time and pod, so that creating a run's Checkpoint of a
 * target twice is impossible.
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

  /**
   * Creates the Checkpoint of {@code target} for the run due at {@code time}, unless it exists
   * already; returns its name.
   */
  public String create(CheckpointSchedule schedule, ScheduleTarget target, Instant time, String trigger) {
    String name = name(schedule, time, trigger, target.pod());
    Map<String, String> labels = new HashMap<>(Map.of(Labels.SCHEDULE, schedule.getMetadata().getName(),
        Labels.TRIGGER, trigger));
    if (target.pod() != null) {
      labels.put(Labels.POD, Labels.podValue(target.pod()));
    }
    Checkpoint checkpoint = new Checkpoint();
    checkpoint.setMetadata(new ObjectMetaBuilder()
        .withName(name)
        .withNamespace(schedule.getMetadata().getNamespace())
        .withLabels(labels)
        .withAnnotations(Map.of(SCHEDULED_TIME, time.toString()))
        .withOwnerReferences(ownerReference(schedule))
        .build());
    checkpoint.setSpec(target.spec());
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

  /**
   * {@code <schedule>[-drain]-<yyyyMMddHHmmss>[-<pod>]}; shortened with a hash of the whole past the
   * 253 characters of an object name (only a pod's name can make it that long).
   */
  public static String name(CheckpointSchedule schedule, Instant time, String trigger, String pod) {
    String infix = Labels.TRIGGER_DRAIN.equals(trigger) ? "-drain-" : "-";
    String name = schedule.getMetadata().getName() + infix + NAME_TIME.format(time) + (pod == null ? "" : "-" + pod);
    return Names.shortened(name, Names.MAX_OBJECT_NAME);
  }

  /** The {@value Labels#POD} label of a schedule's Checkpoint; null for a schedule without selector. */
  public static String podLabel(Checkpoint checkpoint) {
    return checkpoint.getMetadata().getLabels() == null ? null : checkpoint.getMetadata().getLabels().get(Labels.POD);
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
