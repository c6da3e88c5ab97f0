package dev.stasis.kube;

import dev.stasis.api.CheckpointStorage;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.storage.StorageUnavailableException;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.net.HttpURLConnection;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;

/**
 * The chunk secret of a storage that does not encrypt: 32 random bytes the operator generates the
 * first time a deduplicated checkpoint is taken there, from which each namespace's chunk key is
 * derived ({@link dev.stasis.archive.ChunkKey}), so chunk names reveal nothing to whoever reads the
 * bucket. It lives in a Secret of the operator's own namespace, {@code stasis-chunks-<storage>},
 * never in the bucket, and outlives the CheckpointStorage (no owner): a storage recreated under the
 * same name over the same bucket keeps naming chunks as before and still restores its checkpoints.
 * Only the operator reads it; agents get a namespace's derived key in their work's grant.
 */
public final class ChunkSecrets {
  /** The id the secret is stored and recorded (manifest {@code chunks.keyId}) under. */
  public static final String KEY_ID = "chunks-1";
  static final String NAME_PREFIX = "stasis-chunks-";
  private static final SecureRandom RANDOM = new SecureRandom();

  private final KubernetesClient client;
  private final String namespace;

  /** In the client's namespace: the operator's own in a cluster (its service account's), else the kubeconfig's. */
  public ChunkSecrets(KubernetesClient client) {
    this(client, client.getNamespace() == null ? "default" : client.getNamespace());
  }

  /** In {@code namespace}, the operator's (for tools that run elsewhere: stasis inspect). */
  public ChunkSecrets(KubernetesClient client, String namespace) {
    this.client = client;
    this.namespace = namespace;
  }

  /** Where a storage's chunk secret is kept, for messages and docs: {@code <namespace>/stasis-chunks-<storage>}. */
  public String location(CheckpointStorage storage) {
    return namespace + "/" + secretName(storage);
  }

  /** The storage's chunk secret, made on first use. */
  public ArchiveKey current(CheckpointStorage storage) throws StorageUnavailableException {
    Optional<ArchiveKey> existing = find(storage, KEY_ID);
    if (existing.isPresent()) {
      return existing.get();
    }
    byte[] bytes = new byte[ArchiveKey.BYTES];
    RANDOM.nextBytes(bytes);
    Secret secret = new SecretBuilder().withNewMetadata().withName(secretName(storage)).withNamespace(namespace)
        .addToLabels("app.kubernetes.io/managed-by", "stasis")
        .addToAnnotations("stasis.dev/chunk-secret-of", storage.getMetadata().getName())
        .endMetadata()
        .withData(Map.of(KEY_ID, Base64.getEncoder().encodeToString(bytes))).build();
    try {
      client.secrets().inNamespace(namespace).resource(secret).create();
      return new ArchiveKey(KEY_ID, bytes);
    } catch (KubernetesClientException e) {
      if (e.getCode() != HttpURLConnection.HTTP_CONFLICT) {
        throw new StorageUnavailableException("cannot create the chunk secret " + location(storage)
            + " of CheckpointStorage '" + storage.getMetadata().getName() + "': " + e.getMessage(), e);
      }
      // made meanwhile by another reconciliation: that one is the storage's
      return find(storage, KEY_ID).orElseThrow(() -> new StorageUnavailableException("the chunk secret "
          + location(storage) + " was made and deleted again while it was read"));
    }
  }

  /** The chunk secret {@code keyId} of the storage, if its Secret holds it. */
  public Optional<ArchiveKey> find(CheckpointStorage storage, String keyId) throws StorageUnavailableException {
    Secret secret;
    try {
      secret = client.secrets().inNamespace(namespace).withName(secretName(storage)).get();
    } catch (KubernetesClientException e) {
      throw new StorageUnavailableException("cannot read the chunk secret " + location(storage) + ": "
          + e.getMessage(), e);
    }
    String value = secret == null || secret.getData() == null ? null : secret.getData().get(keyId);
    if (value == null) {
      return Optional.empty();
    }
    byte[] bytes = Base64.getDecoder().decode(value);
    if (bytes.length != ArchiveKey.BYTES) {
      throw new StorageUnavailableException("the chunk secret " + location(storage) + " holds " + bytes.length
          + " bytes under " + keyId + ", not " + ArchiveKey.BYTES + ": it was altered; restore it from a backup");
    }
    return Optional.of(new ArchiveKey(keyId, bytes));
  }

  private static String secretName(CheckpointStorage storage) {
    return NAME_PREFIX + storage.getMetadata().getName();
  }
}
