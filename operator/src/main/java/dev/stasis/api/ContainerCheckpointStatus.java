package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;

/** One container of a pod checkpoint: which container it was, and its archive once stored. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class ContainerCheckpointStatus {
  public String name;
  /** The runtime's ID of the container at the time it was checkpointed, e.g. cri-o://3f2a…. */
  public String containerID;
  public ArchiveStatus archive;

  public ContainerCheckpointStatus() {}

  public ContainerCheckpointStatus(String name, String containerID) {
    this.name = name;
    this.containerID = containerID;
  }
}
