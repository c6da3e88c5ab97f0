package dev.stasis.testing;

import static org.awaitility.Awaitility.await;

import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.FileSystemStorage;
import dev.stasis.api.S3Storage;
import dev.stasis.api.SecretReference;
import dev.stasis.kube.StorageBinding;
import dev.stasis.storage.ObjectStore;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * A CheckpointStorage as the tests make them: a folder, or a bucket of an S3 server (path-style)
 * with a credentials Secret named like the storage; whatever else a test needs set through
 * {@link #with}. {@link #create} creates the Secret first and then the storage.
 */
public final class TestStorage {
  private final CheckpointStorage storage = new CheckpointStorage();
  private SecretReference secret;
  private Map<String, String> credentials;

  private TestStorage(String name) {
    storage.setMetadata(new ObjectMetaBuilder().withName(name).build());
    storage.setSpec(new CheckpointStorageSpec());
  }

  /** Archives in the folder {@code root}. */
  public static TestStorage filesystem(String name, Path root) {
    TestStorage s = new TestStorage(name);
    s.storage.getSpec().filesystem = new FileSystemStorage(root.toString());
    return s;
  }

  /** Archives in {@code bucket} of the S3 server at {@code endpoint}; no credentials until {@link #credentials}. */
  public static TestStorage s3(String name, String endpoint, String bucket) {
    TestStorage s = new TestStorage(name);
    s.storage.getSpec().s3 = new S3Storage();
    s.storage.getSpec().s3.endpoint = endpoint;
    s.storage.getSpec().s3.bucket = bucket;
    s.storage.getSpec().s3.pathStyle = true;
    return s;
  }

  /** The keys of {@code server}, in Secret {@code <name>} of namespace {@code default}. */
  public TestStorage credentials(S3Server server) {
    return credentials("default", Map.of(StorageBinding.ACCESS_KEY_ID, server.accessKey(),
        StorageBinding.SECRET_ACCESS_KEY, server.secretKey()));
  }

  /** Secret {@code <name>} of {@code namespace} holding {@code data}, which need not be complete. */
  public TestStorage credentials(String namespace, Map<String, String> data) {
    secret = new SecretReference(storage.getMetadata().getName(), namespace);
    credentials = data;
    storage.getSpec().s3.credentialsSecret = secret;
    return this;
  }

  public TestStorage with(Consumer<CheckpointStorageSpec> change) {
    change.accept(storage.getSpec());
    return this;
  }

  /** For reconciler tests that hand the object to a reconciler without creating it. */
  public TestStorage generation(long generation) {
    storage.getMetadata().setGeneration(generation);
    return this;
  }

  public CheckpointStorage build() {
    return storage;
  }

  /** Creates the Secret (if any) and the storage; returns the storage as created. */
  public CheckpointStorage create(KubernetesClient client) {
    if (credentials != null) {
      client.resource(new SecretBuilder().withNewMetadata().withName(secret.name).withNamespace(secret.namespace)
          .endMetadata().withStringData(credentials).build()).create();
    }
    return client.resource(storage).create();
  }

  /** Whether the operator found storage {@code name} Available. */
  public static boolean isAvailable(KubernetesClient client, String name) {
    return hasPhase(client, name, "Available");
  }

  /** Waits until the operator's check of storage {@code name} gave {@code phase}. */
  public static void awaitPhase(KubernetesClient client, String name, String phase, Duration timeout) {
    await().atMost(timeout).until(() -> hasPhase(client, name, phase));
  }

  /**
   * Runs storage {@code name}'s garbage collection now, as if its 10 minutes had passed, with grace
   * period {@code gracePeriod}; returns the storage once the operator recorded that collection and
   * the usage it summed up. The grace period is set first and seen by the operator before the
   * collection is made due: a collection that started first would keep what is younger than the
   * grace period it had. The status records the collection's time to the second.
   */
  public static CheckpointStorage collectNow(KubernetesClient client, String name, String gracePeriod,
      Duration timeout) {
    var storage = client.resources(CheckpointStorage.class).withName(name);
    long generation = storage.patch(PatchContext.of(PatchType.JSON_MERGE),
        "{\"spec\": {\"garbageCollection\": {\"gracePeriod\": \"" + gracePeriod + "\"}}}").getMetadata()
        .getGeneration();
    await("the operator sees grace period " + gracePeriod).atMost(timeout).until(() -> {
      var status = storage.get().getStatus();
      return status != null && status.observedGeneration != null && status.observedGeneration >= generation;
    });
    Instant asked = Instant.now().truncatedTo(ChronoUnit.SECONDS);
    storage.subresource("status").patch(PatchContext.of(PatchType.JSON_MERGE),
        "{\"status\": {\"lastGarbageCollectionTime\": null}}");
    return await("storage " + name + "'s collection ran").atMost(timeout).until(storage::get, s -> {
      var status = s.getStatus();
      return status.lastGarbageCollectionTime != null && !Instant.parse(status.lastGarbageCollectionTime).isBefore(asked)
          && status.usage != null && !Instant.parse(status.usage.computedAt).isBefore(asked);
    });
  }

  /**
   * The keys in {@code bucket} but a storage check's probe (under any storage's prefix), which the
   * operator's check writes and deletes again at any time: over a slowed link a listing can meet one.
   */
  public static List<String> keysIn(S3Client s3, String bucket) {
    return s3.listObjectsV2(b -> b.bucket(bucket)).contents().stream().map(S3Object::key)
        .filter(k -> !k.substring(k.lastIndexOf('/') + 1).startsWith(ObjectStore.CHECK_PROBE_PREFIX)).toList();
  }

  private static boolean hasPhase(KubernetesClient client, String name, String phase) {
    CheckpointStorage s = client.resources(CheckpointStorage.class).withName(name).get();
    return s != null && s.getStatus() != null && phase.equals(s.getStatus().phase);
  }
}
