package dev.stasis.api;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Plural;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** One checkpoint of a process tree on a node (via CRIU) or of a pod's containers (via the kubelet). */
@Group(Checkpoint.GROUP)
@Version(Checkpoint.VERSION)
@ShortNames("ckpt")
@Plural("checkpoints")
@AdditionalPrinterColumn(name = "Target", jsonPath = ".status.target", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Node", jsonPath = ".status.node", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Progress", jsonPath = ".status.progress.percent", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Stored", jsonPath = ".status.archive.storedBytes", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(name = "New", jsonPath = ".status.archive.newBytes", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(name = "Reason", jsonPath = ".status.reason", type = AdditionalPrinterColumn.Type.STRING, priority = 1)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
public class Checkpoint extends CustomResource<CheckpointSpec, CheckpointStatus> implements Namespaced {
  public static final String GROUP = "stasis.dev";
  public static final String VERSION = "v1alpha1";
}
