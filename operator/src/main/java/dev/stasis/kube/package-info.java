/**
 * Kubernetes plumbing both roles share: Events, status writes, labels, and binding a
 * CheckpointStorage resource to the {@link dev.stasis.storage.ObjectStore} it describes.
 */
package dev.stasis.kube;
