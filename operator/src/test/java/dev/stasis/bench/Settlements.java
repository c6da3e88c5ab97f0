package dev.stasis.bench;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;

/**
 * Watches one kind in one namespace and notes when each object first reaches a settled state (a
 * terminal phase), with the time the watch event arrived: the moment a user watching would know.
 */
final class Settlements<T extends HasMetadata> implements AutoCloseable {
  private final Map<String, CompletableFuture<Settled<T>>> byName = new ConcurrentHashMap<>();
  private final SharedIndexInformer<T> informer;

  record Settled<T>(T resource, long nanoTime) {}

  Settlements(KubernetesClient client, Class<T> type, String namespace, Predicate<T> isSettled) {
    this.informer = client.resources(type).inNamespace(namespace).inform(new ResourceEventHandler<T>() {
      @Override
      public void onAdd(T resource) {
        seen(resource);
      }

      @Override
      public void onUpdate(T old, T resource) {
        seen(resource);
      }

      @Override
      public void onDelete(T resource, boolean unknownFinalState) {}

      private void seen(T resource) {
        if (isSettled.test(resource)) {
          long now = System.nanoTime();
          future(resource.getMetadata().getName()).complete(new Settled<>(resource, now));
        }
      }
    });
  }

  CompletableFuture<Settled<T>> future(String name) {
    return byName.computeIfAbsent(name, n -> new CompletableFuture<>());
  }

  @Override
  public void close() {
    informer.close();
  }
}
