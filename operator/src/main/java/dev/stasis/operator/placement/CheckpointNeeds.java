package dev.stasis.operator.placement;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.archive.Manifest;
import java.util.List;

/**
 * What a checkpoint needs from the node it is restored on, as its manifest recorded it: the source
 * node and its profile, the CRIU that wrote the images, the established TCP connections it holds
 * (most survive only on the source node), the GPU devices it used, and whether it is a pod's
 * (restored by the node's container runtime from checkpoint images).
 */
public record CheckpointNeeds(String sourceNode, NodeProfileSpec source, String criuVersion,
    List<String> tcpConnections, List<String> gpuDevices, boolean podCheckpoint) {

  // A newer agent may have recorded profile fields this operator does not know yet.
  private static final ObjectMapper JSON = new ObjectMapper().disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  public CheckpointNeeds {
    source = source != null ? source : new NodeProfileSpec();
    tcpConnections = tcpConnections != null ? List.copyOf(tcpConnections) : List.of();
    gpuDevices = gpuDevices != null ? List.copyOf(gpuDevices) : List.of();
  }

  /**
   * What a checkpoint of a process tree or a pod ({@code pod}) on {@code node}, not taken yet, will
   * need: what that node offers (arch, CPU flags, its CRIU, its runtime). The paths and connections
   * the tree holds are known only once it is taken; the restore's own placement and pre-flight look
   * at them.
   */
  public static CheckpointNeeds ofTargetOn(String node, NodeProfileSpec profile, boolean pod) {
    String criu = profile != null && profile.criu != null ? profile.criu.version : null;
    return new CheckpointNeeds(node, profile, criu, List.of(), List.of(), pod);
  }

  /**
   * Whether the TCP connections tie the checkpoint to its source node: any connection to an address
   * off the node or to a process outside the tree does. A loopback connection with both ends in the
   * tree ("a -> b" and "b -> a" both recorded, as an MPI launcher and its ranks hold) is restored
   * whole, with its loopback addresses, on any node.
   */
  public boolean tcpBoundToSourceNode() {
    for (String connection : tcpConnections) {
      String[] ends = connection.split(" -> ");
      if (ends.length != 2 || !isLoopback(ends[0]) || !isLoopback(ends[1])
          || !tcpConnections.contains(ends[1] + " -> " + ends[0])) {
        return true;
      }
    }
    return false;
  }

  private static boolean isLoopback(String address) {
    return address.startsWith("127.") || address.startsWith("[0:0:0:0:0:0:0:1]:") || address.startsWith("[::1]:");
  }

  public static CheckpointNeeds of(Manifest manifest) {
    NodeProfileSpec profile = manifest.nodeProfile == null ? null : JSON.convertValue(manifest.nodeProfile, NodeProfileSpec.class);
    String criu = manifest.criu != null && manifest.criu.version != null ? manifest.criu.version
        : profile != null && profile.criu != null ? profile.criu.version : null;
    return new CheckpointNeeds(manifest.source == null ? null : manifest.source.node, profile, criu,
        manifest.tcpConnections, manifest.gpuDevices, manifest.source != null && manifest.source.podName != null);
  }
}
