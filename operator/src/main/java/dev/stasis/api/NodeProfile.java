package dev.stasis.api;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Plural;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/**
 * What a node can restore, as its agent observed it. Named after the node. The agent owns the
 * whole object (like a kubelet owns its Node's status); users only read it. Its labels are the
 * ones {@code spec.placement.nodeSelector} of a Restore matches: the Node's labels plus the
 * agent's {@code --node-labels}. Its status carries the agent's heartbeat.
 */
@Group(Checkpoint.GROUP)
@Version(Checkpoint.VERSION)
@ShortNames("nodeprof")
@Plural("nodeprofiles")
@AdditionalPrinterColumn(name = "Arch", jsonPath = ".spec.arch", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "CPU", jsonPath = ".spec.cpu.modelName", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "CRIU", jsonPath = ".spec.criu.version", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Kernel", jsonPath = ".spec.kernelRelease", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Runtime", jsonPath = ".spec.runtime.name", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Version", jsonPath = ".spec.runtime.version", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Restores", jsonPath = ".spec.runtime.restore.enabled", type = AdditionalPrinterColumn.Type.BOOLEAN)
@AdditionalPrinterColumn(name = "Seen", jsonPath = ".status.heartbeatTime", type = AdditionalPrinterColumn.Type.DATE)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
public class NodeProfile extends CustomResource<NodeProfileSpec, NodeProfileStatus> {}
