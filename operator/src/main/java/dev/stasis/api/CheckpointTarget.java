package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyDescription;
import io.fabric8.generator.annotation.ValidationRule;

@JsonInclude(JsonInclude.Include.NON_NULL)
@ValidationRule(
    value = "has(self.process) != has(self.pod)",
    message = "set exactly one of target.process (a process tree on a node) or target.pod (a pod's containers)")
public class CheckpointTarget {
  @JsonPropertyDescription("A process tree on a node, checkpointed by the node's agent with CRIU.")
  public ProcessTarget process;

  @JsonPropertyDescription("A pod's container(s), checkpointed through the kubelet.")
  public PodTarget pod;

  public static CheckpointTarget process(String node, int pid) {
    var target = new CheckpointTarget();
    target.process = new ProcessTarget(node, pid);
    return target;
  }

  /** What it names, in a few characters: {@code pod/NAME} or {@code process/PID}. */
  public String describe() {
    if (pod != null) {
      return "pod/" + pod.name;
    }
    return process == null ? null : "process/" + process.pid;
  }

  /** A pod's container, or all of its containers when {@code container} is null. */
  public static CheckpointTarget pod(String name, String container) {
    var target = new CheckpointTarget();
    target.pod = new PodTarget(name, container);
    return target;
  }
}
