package dev.stasis.api;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Plural;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** Where checkpoint archives are stored: an S3-compatible bucket or a filesystem path. */
@Group(Checkpoint.GROUP)
@Version(Checkpoint.VERSION)
@ShortNames("ckptstore")
@Plural("checkpointstorages")
@AdditionalPrinterColumn(name = "Location", jsonPath = ".status.location", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Default", jsonPath = ".spec.default", type = AdditionalPrinterColumn.Type.BOOLEAN)
@AdditionalPrinterColumn(name = "Phase", jsonPath = ".status.phase", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Stored", jsonPath = ".status.usage.storedBytes", type = AdditionalPrinterColumn.Type.INTEGER)
@AdditionalPrinterColumn(name = "Dedup", jsonPath = ".status.usage.deduplicationRatio", type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(name = "Message", jsonPath = ".status.message", type = AdditionalPrinterColumn.Type.STRING, priority = 1)
@AdditionalPrinterColumn(name = "Age", jsonPath = ".metadata.creationTimestamp", type = AdditionalPrinterColumn.Type.DATE)
public class CheckpointStorage extends CustomResource<CheckpointStorageSpec, CheckpointStorageStatus> {}
