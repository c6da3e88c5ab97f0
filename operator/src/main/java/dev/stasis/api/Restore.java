package dev.stasis.api;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Plural;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** Brings a Completed {@link Checkpoint} back to life on a node that can run it. */
@Group(Checkpoint.GROUP)
@Version(Checkpoint.VERSION)
@ShortNames("rst")
@Plural("restores")
@AdditionalPrinterColumn(name = "Checkpoint", jsonPath = ".status.checkpoint", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Node", jsonPath = ".status.node", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Progress", jsonPath = ".status.progress.percent", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "PID", jsonPath = ".status.restoredPid", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(name = "Pod", jsonPath = ".status.restoredPod", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Reason", jsonPath = ".status.reason", type = AdditionalPrinterColumn.Type.STRING, priority = 1)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
public class Restore extends CustomResource<RestoreSpec, RestoreStatus> implements Namespaced {

  /** The Checkpoint restored: the one the operator chose (spec.scheduleRef leaves it the choice), else spec.checkpointRef's. */
  public String checkpointName() {
    if (getStatus() != null && getStatus().checkpoint != null) {
      return getStatus().checkpoint;
    }
    return getSpec() == null || getSpec().checkpointRef == null ? null : getSpec().checkpointRef.name;
  }
}
