package dev.stasis.kube;

import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.NodeProfile;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The cluster-scoped objects the operator reads for every Checkpoint and Restore: NodeProfiles and
 * CheckpointStorages. {@link #watching} keeps them in
 * informers, so that 1,000 Checkpoints cost no GET or LIST each; {@link #reading} asks the API
 * server every time (the agent, and tests on the mock server).
 *
 * <p>A cache lags behind the API server by the time a watch event takes (milliseconds). An answer
 * that would refuse something (an object, or a namespace's label, not found) is therefore checked
 * against the API server before it is given, so a NodeProfile or storage created just now is never
 * missed; only an object deleted in the last moment may still be seen.
 */
public final class ClusterCache {
  private final KubernetesClient client;
  private final SharedIndexInformer<NodeProfile> nodeProfiles;
  private final SharedIndexInformer<CheckpointStorage> storages;

  private ClusterCache(KubernetesClient client, boolean watch) {
    this.client = client;
    // Started, not waited for: until an informer has listed what exists, lookups ask the API
    // server, so the operator starts as fast as before. Closed with the client.
    this.nodeProfiles = watch ? started(client.resources(NodeProfile.class).runnableInformer(0)) : null;
    this.storages = watch ? started(client.resources(CheckpointStorage.class).runnableInformer(0)) : null;
  }

  private static <T> SharedIndexInformer<T> started(SharedIndexInformer<T> informer) {
    informer.start();
    return informer;
  }

  /** Starts informers; lookups use them once they have listed what exists. */
  public static ClusterCache watching(KubernetesClient client) {
    return new ClusterCache(client, true);
  }

  public static ClusterCache reading(KubernetesClient client) {
    return new ClusterCache(client, false);
  }

  /** Whether every informer has listed what exists (always, when reading the API server). */
  public boolean synced() {
    return Stream.of(nodeProfiles, storages).allMatch(i -> i == null || i.hasSynced());
  }

  /** Null when there is none. */
  public NodeProfile nodeProfile(String name) {
    return get(nodeProfiles, name, n -> client.resources(NodeProfile.class).withName(n).get());
  }

  public List<NodeProfile> nodeProfiles() {
    return list(nodeProfiles, () -> client.resources(NodeProfile.class).list().getItems());
  }

  /** Null when there is none. */
  public CheckpointStorage storage(String name) {
    return get(storages, name, n -> client.resources(CheckpointStorage.class).withName(n).get());
  }

  /**
   * All storages; {@code fresh} reads them from the API server, for an answer that would refuse
   * something.
   */
  public List<CheckpointStorage> storages(boolean fresh) {
    return list(fresh ? null : storages, () -> client.resources(CheckpointStorage.class).list().getItems());
  }

  private static <T extends HasMetadata> T get(
      SharedIndexInformer<T> informer, String name, Function<String, T> fromApiServer) {
    T cached = informer == null ? null : informer.getStore().getByKey(name);
    return cached != null ? cached : fromApiServer.apply(name);
  }

  private static <T extends HasMetadata> List<T> list(SharedIndexInformer<T> informer, Supplier<List<T>> fromApiServer) {
    return informer != null && informer.hasSynced() ? informer.getStore().list() : fromApiServer.get();
  }
}
