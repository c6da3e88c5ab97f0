package dev.stasis.kube;

import dev.stasis.api.CheckpointStorage;
import dev.stasis.api.CheckpointStorageSpec;
import dev.stasis.api.RegistrySpec;
import dev.stasis.api.S3Storage;
import dev.stasis.api.SecretReference;
import dev.stasis.api.EncryptionSpec;
import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.ArchiveKeys;
import dev.stasis.image.Registry;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.S3Config;
import dev.stasis.storage.S3ObjectStore;
import dev.stasis.storage.StorageUnavailableException;
import dev.stasis.tls.TlsTrust;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import javax.net.ssl.SSLContext;

/** Turns a {@link CheckpointStorage} resource into the {@link ObjectStore} it describes. */
public class StorageBinding {
  public static final String ACCESS_KEY_ID = "accessKeyId";
  public static final String SECRET_ACCESS_KEY = "secretAccessKey";

  private final KubernetesClient client;
  private final ClusterCache cluster;

  public StorageBinding(KubernetesClient client, ClusterCache cluster) {
    this.client = client;
    this.cluster = cluster;
  }

  public StorageBinding(KubernetesClient client) {
    this(client, ClusterCache.reading(client));
  }

  public CheckpointStorage find(String name) {
    return cluster.storage(name);
  }

  /** The storage a Checkpoint names, or the one marked default when it names none. */
  public CheckpointStorage resolve(String name) throws StorageUnavailableException {
    if (name != null && !name.isBlank()) {
      CheckpointStorage storage = find(name);
      if (storage == null) {
        throw new StorageUnavailableException("CheckpointStorage '" + name
            + "' does not exist: create it or fix spec.storage (kubectl get ckptstore lists them)");
      }
      return storage;
    }
    var defaults = defaultStorages(false);
    if (defaults.size() != 1) {
      defaults = defaultStorages(true); // a refusal: make sure it is not the cache lagging
    }
    if (defaults.isEmpty()) {
      throw new StorageUnavailableException(
          "no CheckpointStorage is marked default: set spec.storage, or mark one storage with spec.default: true");
    }
    if (defaults.size() > 1) {
      throw new StorageUnavailableException("more than one CheckpointStorage is marked default ("
          + String.join(", ", defaults.stream().map(s -> s.getMetadata().getName()).toList())
          + "): set spec.storage, or keep spec.default on only one");
    }
    return defaults.get(0);
  }

  private List<CheckpointStorage> defaultStorages(boolean fresh) {
    return cluster.storages(fresh).stream().filter(s -> s.getSpec() != null && s.getSpec().isDefault()).toList();
  }

  /** Empty when the storage takes this namespace's Checkpoints, else what to do about it. */
  public static java.util.Optional<String> refusal(CheckpointStorage storage, String namespace) {
    if (storage.getSpec() == null || storage.getSpec().allows(namespace)) {
      return java.util.Optional.empty();
    }
    return java.util.Optional.of("CheckpointStorage '" + storage.getMetadata().getName()
        + "' does not take Checkpoints of namespace " + namespace + " (spec.allowedNamespaces: "
        + String.join(", ", storage.getSpec().allowedNamespaces)
        + "): use another storage, or ask a cluster admin to add the namespace");
  }

  /** The store, with the credentials of its Secret (which only the operator may read). */
  public ObjectStore open(CheckpointStorage storage) throws StorageUnavailableException {
    return open(storage, s3Credentials(storage).orElse(null));
  }

  /** The store, with credentials given (an agent's, from its work's grant); null: none (filesystem, default chain). */
  public ObjectStore open(CheckpointStorage storage, WorkGrants.Credentials s3) throws StorageUnavailableException {
    CheckpointStorageSpec spec = storage.getSpec();
    String name = storage.getMetadata().getName();
    if (spec == null || (spec.s3 == null) == (spec.filesystem == null)) {
      throw new StorageUnavailableException(
          "CheckpointStorage '" + name + "' must set exactly one of spec.s3 or spec.filesystem");
    }
    if (spec.filesystem != null) {
      if (spec.filesystem.path == null || !spec.filesystem.path.startsWith("/")) {
        throw new StorageUnavailableException(
            "CheckpointStorage '" + name + "': spec.filesystem.path must be an absolute path");
      }
      return new FileSystemObjectStore(Path.of(spec.filesystem.path));
    }
    if (spec.s3.bucket == null || spec.s3.bucket.isBlank()) {
      throw new StorageUnavailableException("CheckpointStorage '" + name + "': spec.s3.bucket is required");
    }
    if (spec.s3.credentialsSecret != null && s3 == null) {
      throw new StorageUnavailableException("CheckpointStorage '" + name + "' names a credentials Secret, but no"
          + " credentials were given for it");
    }
    return new S3ObjectStore(new S3Config(spec.s3.endpoint, spec.s3.bucket, spec.s3.prefix, spec.s3.region,
        Boolean.TRUE.equals(spec.s3.pathStyle), s3 == null ? null : s3.id(), s3 == null ? null : s3.secret()));
  }

  /** The S3 credentials in the storage's Secret; empty when it names none (filesystem, default chain). */
  public Optional<WorkGrants.Credentials> s3Credentials(CheckpointStorage storage) throws StorageUnavailableException {
    S3Storage s3 = storage.getSpec() == null ? null : storage.getSpec().s3;
    if (s3 == null || s3.credentialsSecret == null) {
      return Optional.empty();
    }
    String storageName = storage.getMetadata().getName();
    Map<String, String> data = secretData(storageName, s3.credentialsSecret);
    String accessKey = data.get(ACCESS_KEY_ID);
    String secretKey = data.get(SECRET_ACCESS_KEY);
    if (accessKey == null || secretKey == null) {
      throw new StorageUnavailableException("Secret " + s3.credentialsSecret.namespace + "/"
          + s3.credentialsSecret.name + " of CheckpointStorage '" + storageName + "' must hold the keys "
          + ACCESS_KEY_ID + " and " + SECRET_ACCESS_KEY);
    }
    return Optional.of(new WorkGrants.Credentials(accessKey, secretKey));
  }

  /** Where a storage keeps its archives, for people: s3://bucket/prefix or a path. */
  public static String location(CheckpointStorage storage) {
    CheckpointStorageSpec spec = storage.getSpec();
    if (spec != null && spec.s3 != null) {
      String prefix = spec.s3.prefix == null || spec.s3.prefix.isBlank() ? "" : "/" + spec.s3.prefix;
      return "s3://" + spec.s3.bucket + prefix;
    }
    return spec != null && spec.filesystem != null ? spec.filesystem.path : "";
  }

  public static ArchiveCodec codec(CheckpointStorage storage) {
    return switch (storage.getSpec().compressionOrDefault()) {
      case zstd -> ArchiveCodec.ZSTD;
      case none -> ArchiveCodec.NONE;
    };
  }

  /**
   * The registry pod checkpoints of this storage are pushed to as checkpoint images, with its
   * credentials and CA read from their Secrets.
   *
   * @throws StorageUnavailableException when the storage names no registry or its Secrets are unusable
   */
  public Registry registry(CheckpointStorage storage) throws StorageUnavailableException {
    return registry(storage, registryCredentials(storage).orElse(null), registryCa(storage).orElse(null));
  }

  /** The registry, with credentials and CA given (an agent's, from its work's grant). */
  public Registry registry(CheckpointStorage storage, WorkGrants.Credentials credentials, String ca)
      throws StorageUnavailableException {
    String name = storage.getMetadata().getName();
    RegistrySpec registry = registrySpec(storage);
    SSLContext tls;
    if (registry.isInsecure()) {
      tls = TlsTrust.insecure();
    } else if (registry.caSecret != null) {
      if (ca == null) {
        throw new StorageUnavailableException("CheckpointStorage '" + name + "' names a registry CA Secret, but no CA"
            + " was given for it");
      }
      try {
        tls = TlsTrust.trusting(ca.getBytes(StandardCharsets.UTF_8));
      } catch (java.io.IOException e) {
        throw new StorageUnavailableException("the CA in Secret " + registry.caSecret.namespace + "/"
            + registry.caSecret.name + " of CheckpointStorage '" + name + "' is " + e.getMessage(), e);
      }
    } else {
      tls = TlsTrust.system();
    }
    return Registry.of(registry.url, credentials == null ? null : credentials.id(),
        credentials == null ? null : credentials.secret(), tls);
  }

  /** The registry's username and password from their Secret; empty when it names none. */
  public Optional<WorkGrants.Credentials> registryCredentials(CheckpointStorage storage)
      throws StorageUnavailableException {
    RegistrySpec registry = registrySpec(storage);
    if (registry.credentialsSecret == null) {
      return Optional.empty();
    }
    String name = storage.getMetadata().getName();
    Map<String, String> data = secretData(name, registry.credentialsSecret);
    String username = data.get(RegistrySpec.USERNAME);
    String password = data.get(RegistrySpec.PASSWORD);
    if (username == null || password == null) {
      throw new StorageUnavailableException("Secret " + registry.credentialsSecret.namespace + "/"
          + registry.credentialsSecret.name + " of CheckpointStorage '" + name + "' must hold the keys "
          + RegistrySpec.USERNAME + " and " + RegistrySpec.PASSWORD);
    }
    return Optional.of(new WorkGrants.Credentials(username, password));
  }

  /** The CA the registry's certificate is checked against, from its Secret; empty when it names none. */
  public Optional<String> registryCa(CheckpointStorage storage) throws StorageUnavailableException {
    RegistrySpec registry = registrySpec(storage);
    if (registry.isInsecure() || registry.caSecret == null) {
      return Optional.empty();
    }
    String ca = secretData(storage.getMetadata().getName(), registry.caSecret).get(RegistrySpec.CA_CERTIFICATE);
    if (ca == null) {
      throw new StorageUnavailableException("Secret " + registry.caSecret.namespace + "/" + registry.caSecret.name
          + " of CheckpointStorage '" + storage.getMetadata().getName() + "' must hold the key "
          + RegistrySpec.CA_CERTIFICATE);
    }
    return Optional.of(ca);
  }

  private static RegistrySpec registrySpec(CheckpointStorage storage) throws StorageUnavailableException {
    RegistrySpec registry = storage.getSpec() == null ? null : storage.getSpec().registry;
    if (registry == null || registry.url == null) {
      throw new StorageUnavailableException("CheckpointStorage '" + storage.getMetadata().getName() + "' names no"
          + " registry: pod checkpoints are restored from checkpoint images, so set spec.registry.url (and"
          + " credentialsSecret) on it");
    }
    return registry;
  }

  /**
   * The keys archives of this storage are encrypted with; empty when it does not encrypt.
   *
   * @throws EncryptionKeyException when the Secret is missing, does not hold the current key, or
   *     holds a value that is not a key
   */
  public Optional<ArchiveKeys> archiveKeys(CheckpointStorage storage) throws EncryptionKeyException {
    EncryptionSpec encryption = storage.getSpec() == null ? null : storage.getSpec().encryption;
    if (encryption == null) {
      return Optional.empty();
    }
    String name = storage.getMetadata().getName();
    SecretReference ref = encryption.keySecretRef;
    if (ref == null || ref.name == null || ref.namespace == null || encryption.currentKeyId == null) {
      throw new EncryptionKeyException("CheckpointStorage '" + name
          + "': spec.encryption needs keySecretRef (name, namespace) and currentKeyId");
    }
    String secretName = "Secret " + ref.namespace + "/" + ref.name + " of CheckpointStorage '" + name + "'";
    Secret secret;
    try {
      secret = secret(name, ref);
    } catch (StorageUnavailableException e) {
      // The API server refused or failed (the cause): creating the Secret is no answer to that.
      throw new EncryptionKeyException(e.getMessage() + (e.getCause() != null ? "" : "; create it with the archive"
          + " encryption keys (README: Encryption at rest), e.g. kubectl create secret generic " + ref.name + " -n "
          + ref.namespace + " --from-file=" + encryption.currentKeyId + "=<(head -c 32 /dev/urandom)"), e.getCause());
    }
    Map<String, ArchiveKey> keys = new TreeMap<>();
    if (secret.getData() != null) {
      for (var entry : secret.getData().entrySet()) {
        keys.put(entry.getKey(), archiveKey(secretName, entry.getKey(), Base64.getDecoder().decode(entry.getValue())));
      }
    }
    if (secret.getStringData() != null) {
      for (var entry : secret.getStringData().entrySet()) {
        keys.put(entry.getKey(), archiveKey(secretName, entry.getKey(), entry.getValue().getBytes(StandardCharsets.UTF_8)));
      }
    }
    if (!keys.containsKey(encryption.currentKeyId)) {
      throw new EncryptionKeyException(secretName + " holds no key '" + encryption.currentKeyId
          + "' (spec.encryption.currentKeyId)" + (keys.isEmpty() ? "; it holds no keys at all" : "; it holds "
          + String.join(", ", keys.keySet())) + ": add that key to the Secret, or set currentKeyId to a key it holds");
    }
    return Optional.of(new ArchiveKeys(encryption.currentKeyId, keys));
  }

  /** A key is 32 random bytes; their base64 is taken too, since that is what key generators print. */
  private static ArchiveKey archiveKey(String secretName, String id, byte[] value) throws EncryptionKeyException {
    if (value.length == ArchiveKey.BYTES) {
      return new ArchiveKey(id, value);
    }
    try {
      byte[] decoded = Base64.getDecoder().decode(new String(value, StandardCharsets.US_ASCII).trim());
      if (decoded.length == ArchiveKey.BYTES) {
        return new ArchiveKey(id, decoded);
      }
    } catch (IllegalArgumentException e) {
      // not base64: the length below is what to fix
    }
    throw new EncryptionKeyException("key '" + id + "' in " + secretName + " is " + value.length
        + " bytes: an AES-256 key is " + ArchiveKey.BYTES + " random bytes (head -c 32 /dev/urandom) or their base64"
        + " (openssl rand -base64 32)");
  }

  private Map<String, String> secretData(String storageName, SecretReference ref) throws StorageUnavailableException {
    Secret secret = secret(storageName, ref);
    var data = new java.util.HashMap<String, String>();
    if (secret.getData() != null) {
      secret.getData().forEach((k, v) -> data.put(k, new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8)));
    }
    if (secret.getStringData() != null) {
      data.putAll(secret.getStringData());
    }
    return data;
  }

  private Secret secret(String storageName, SecretReference ref) throws StorageUnavailableException {
    Secret secret;
    try {
      secret = client.secrets().inNamespace(ref.namespace).withName(ref.name).get();
    } catch (KubernetesClientException e) {
      throw new StorageUnavailableException("cannot read Secret " + ref.namespace + "/" + ref.name
          + " of CheckpointStorage '" + storageName + "': " + e.getStatus().getMessage(), e);
    }
    if (secret == null) {
      throw new StorageUnavailableException("Secret " + ref.namespace + "/" + ref.name
          + " named by CheckpointStorage '" + storageName + "' does not exist");
    }
    return secret;
  }
}
