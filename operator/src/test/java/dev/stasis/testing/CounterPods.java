package dev.stasis.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodSpecBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.readiness.Readiness;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;

/**
 * Pods on the real node whose containers count in their log, one a second (the image
 * {@link WorkloadImages} pushes as pod-counter), and what their logs show after a restore.
 */
public final class CounterPods {
  private CounterPods() {}

  /** A pod spec whose containers all run {@code image}, ending at once when deleted. */
  public static PodSpec spec(String image, String... containers) {
    PodSpecBuilder spec = new PodSpecBuilder().withTerminationGracePeriodSeconds(1L);
    for (String container : containers) {
      spec.addNewContainer().withName(container).withImage(image).endContainer();
    }
    return spec.build();
  }

  /** Creates the pod and waits until it is Ready. */
  public static Pod run(KubernetesClient admin, String namespace, String name, Map<String, String> labels,
      String image, String... containers) {
    admin.resource(new PodBuilder().withNewMetadata().withName(name).withNamespace(namespace).withLabels(labels)
        .endMetadata().withSpec(spec(image, containers)).build()).create();
    return admin.pods().inNamespace(namespace).withName(name).waitUntilCondition(Readiness::isPodReady, 120,
        TimeUnit.SECONDS);
  }

  /** Every count a container printed, as its log shows them (a line still being written left out). */
  public static List<Long> counts(KubernetesClient admin, String namespace, String pod, String container) {
    String log = admin.pods().inNamespace(namespace).withName(pod).inContainer(container).getLog();
    List<String> lines = log.lines().toList();
    return (log.endsWith("\n") ? lines : lines.subList(0, Math.max(0, lines.size() - 1))).stream()
        .map(String::strip).filter(l -> !l.isEmpty()).map(Long::parseLong).toList();
  }

  public static long lastCount(KubernetesClient admin, String namespace, String pod, String container) {
    List<Long> counts = counts(admin, namespace, pod, container);
    return counts.isEmpty() ? 0 : counts.get(counts.size() - 1);
  }

  /**
   * The restored container's log (containerd restores the checkpointed one and appends) runs
   * 1..a, then the restored process goes on at some r with r..N, no count missing: it did not start
   * over, r is past {@code before} (what the container had printed when the checkpoint was asked
   * for), and it counted on well past the checkpoint. r may repeat a few counts (r <= a): the
   * kubelet's checkpoint leaves the container running, so the log copied into the checkpoint and
   * the pipe to containerd's shim (CRIU keeps pipe contents) can hold counts printed after CRIU
   * took the process' memory.
   */
  public static void assertCountsOn(List<Long> counts, long before) {
    int restart = 1;
    while (restart < counts.size() && counts.get(restart) == counts.get(restart - 1) + 1) {
      restart++;
    }
    assertThat(counts.subList(0, restart)).as("the checkpointed log").isEqualTo(LongStream.rangeClosed(1, restart)
        .boxed().toList());
    List<Long> after = counts.subList(restart, counts.size());
    if (!after.isEmpty()) {
      long r = after.get(0);
      assertThat(after).as("the restored process' counts, in %s", counts)
          .isEqualTo(LongStream.range(r, r + after.size()).boxed().toList());
      assertThat(r).as("where the restored process went on, in %s", counts).isGreaterThan(before)
          .isLessThanOrEqualTo(restart);
    }
    assertThat(counts.get(counts.size() - 1)).as("counted on after the checkpoint").isGreaterThan(before + 10);
  }
}
