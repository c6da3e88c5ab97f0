package dev.stasis.storage;

import dev.stasis.api.Checkpoint;

/**
 * Not a store: a class of a leaf package that uses a Kubernetes type of ours, the very thing the
 * package map forbids, so that PackageRulesTest can show its rules catch it. Only ever imported by
 * that test; the rules over the real classes do not see test classes.
 */
public final class LeakyStoreForPackageRules {
  String keyOf(Checkpoint checkpoint) {
    return checkpoint.getMetadata().getName();
  }
}
