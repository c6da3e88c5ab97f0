package dev.stasis.kube;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.api.SealedGrant;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Hkdf;
import io.fabric8.kubernetes.api.model.HasMetadata;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import javax.crypto.Cipher;
import javax.crypto.KeyAgreement;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Grants: what the agent of a node needs for one Checkpoint or Restore, and nothing more, handed
 * over by the operator (which alone reads the storages' Secrets) in the resource's status, sealed to
 * the node's {@link NodeKey}. An agent holds no right to read Secrets: a node sees the credentials of
 * the storages its own work uses and the keys of the very archives it writes or reads, not the
 * storage keys, which decrypt every archive of a storage.
 *
 * <p>Sealing: an ephemeral X25519 key agrees a secret with the node's key; HKDF-SHA256 makes an
 * AES-256-GCM key of it; the grant is encrypted under it with the resource (kind, namespace, name,
 * UID), the node and the node key's fingerprint as associated data, so a grant copied into another
 * resource's status, or meant for another node, does not open.
 */
public final class WorkGrants {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final String VERSION = "v1";
  private static final byte[] INFO = "stasis.dev/grant/v1".getBytes(StandardCharsets.US_ASCII);
  private static final int NONCE_BYTES = 12;

  /** A user name and a password (registry), or an access key and its secret (S3). */
  public record Credentials(String id, String secret) {
    @Override
    public String toString() {
      return "Credentials[" + id + "]"; // never the secret
    }
  }

  /** The key of one archive: of a container of a pod checkpoint, or ("") of a process checkpoint. */
  public record GrantedKey(String container, String keyId, String key) {}

  /** The chunk key of the work's namespace ({@link ChunkKey}), derived from the storage key {@code keyId}. */
  public record GrantedChunkKey(String keyId, String key) {}

  /**
   * What one Checkpoint or Restore may use: its storage's S3 credentials (none for a filesystem
   * storage or one without a Secret), its registry's credentials and CA (pod restores), and the
   * keys of its archives (when the storage encrypts), and the chunk keys of its namespace that
   * deduplicated checkpoints are named (and sealed) with: the current one for a checkpoint, those its
   * manifest names for a restore.
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Grant(String storage, Credentials s3, Credentials registry, String registryCa, List<GrantedKey> keys,
      List<GrantedChunkKey> chunkKeys) {
    public Grant {
      keys = keys == null ? List.of() : List.copyOf(keys);
      chunkKeys = chunkKeys == null ? List.of() : List.copyOf(chunkKeys);
    }

    public Grant(String storage, Credentials s3, Credentials registry, String registryCa, List<GrantedKey> keys) {
      this(storage, s3, registry, registryCa, keys, List.of());
    }

    /** The key of {@code identity}'s archive, if one was granted. */
    public Optional<BoundKey> key(ArchiveIdentity identity) {
      return keys.stream().filter(k -> k.container().equals(identity.container())).findFirst()
          .map(k -> BoundKey.derived(k.keyId(), Base64.getDecoder().decode(k.key()), identity));
    }

    /** The chunk key derived from storage key {@code keyId}, if one was granted. */
    public Optional<ChunkKey> chunkKey(String keyId) {
      return chunkKeys.stream().filter(k -> k.keyId().equals(keyId)).findFirst()
          .map(k -> ChunkKey.derived(k.keyId(), Base64.getDecoder().decode(k.key())));
    }

    /** The one chunk key of a checkpoint's grant; empty when its checkpoint is not deduplicated. */
    public Optional<ChunkKey> chunkKey() {
      return chunkKeys.size() == 1 ? chunkKey(chunkKeys.get(0).keyId()) : Optional.empty();
    }

    @Override
    public String toString() {
      return "Grant[" + storage + "]"; // never the credentials or keys
    }
  }

  /** A grant cannot be opened by this node: none, sealed to another key, or not for this resource. */
  public static final class GrantException extends Exception {
    GrantException(String message) {
      super(message);
    }
  }

  private WorkGrants() {}

  /** A granted key: {@code key} of the storage, bound to the archive {@code identity}. */
  public static GrantedKey grantedKey(BoundKey key) {
    return new GrantedKey(key.identity().container(), key.keyId(),
        Base64.getEncoder().encodeToString(key.derivedBytes()));
  }

  public static GrantedChunkKey grantedChunkKey(ChunkKey key) {
    return new GrantedChunkKey(key.keyId(), Base64.getEncoder().encodeToString(key.bytes()));
  }

  /** Seals {@code grant} for {@code work}, to be opened by the agent of {@code node} whose key is {@code nodePublicKey}. */
  public static SealedGrant seal(Grant grant, HasMetadata work, String node, String nodePublicKey) {
    try {
      KeyFactory keys = KeyFactory.getInstance(NodeKey.ALGORITHM);
      PublicKey nodeKey = keys.generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(nodePublicKey)));
      KeyPair ephemeral = KeyPairGenerator.getInstance(NodeKey.ALGORITHM).generateKeyPair();
      byte[] nonce = new byte[NONCE_BYTES];
      RANDOM.nextBytes(nonce);
      String fingerprint = NodeKey.fingerprint(nodePublicKey);
      Cipher cipher = cipher(Cipher.ENCRYPT_MODE, ephemeral.getPrivate(), nodeKey, ephemeral.getPublic(), nodeKey, nonce,
          context(work, node, fingerprint));
      byte[] sealed = cipher.doFinal(JSON.writeValueAsBytes(grant));
      Base64.Encoder base64 = Base64.getEncoder();
      return new SealedGrant(fingerprint, String.join(".", VERSION, base64.encodeToString(ephemeral.getPublic()
          .getEncoded()), base64.encodeToString(nonce), base64.encodeToString(sealed)));
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      throw new IllegalArgumentException("cannot seal a grant to the key node " + node + " published: " + e.getMessage(), e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Opens the grant of {@code work}, which the operator sealed to this node's {@code key}. */
  public static Grant open(SealedGrant sealed, NodeKey key, HasMetadata work, String node) throws GrantException {
    if (sealed == null || sealed.sealed == null) {
      throw new GrantException("the operator has not granted this work anything yet");
    }
    if (!key.fingerprint().equals(sealed.nodeKey)) {
      throw new GrantException("the grant is sealed to node key " + sealed.nodeKey + ", not to this agent's key "
          + key.fingerprint() + " (the agent made a new key): the operator seals it again");
    }
    String[] parts = sealed.sealed.split("\\.");
    try {
      if (parts.length != 4 || !parts[0].equals(VERSION)) {
        throw new GrantException("the grant is not one this agent reads (" + VERSION + ")");
      }
      Base64.Decoder base64 = Base64.getDecoder();
      PublicKey ephemeral = KeyFactory.getInstance(NodeKey.ALGORITHM)
          .generatePublic(new X509EncodedKeySpec(base64.decode(parts[1])));
      Cipher cipher = cipher(Cipher.DECRYPT_MODE, key.privateKey(), ephemeral, ephemeral, key.publicKeyObject(),
          base64.decode(parts[2]), context(work, node, sealed.nodeKey));
      return JSON.readValue(cipher.doFinal(base64.decode(parts[3])), Grant.class);
    } catch (GeneralSecurityException | IllegalArgumentException | IOException e) {
      throw new GrantException("the grant in the status does not open for " + describe(work) + " on node " + node
          + ": it was sealed for another resource or node, or altered (" + e.getClass().getSimpleName() + ")");
    }
  }

  /** The AES-GCM cipher of one grant: key agreed between {@code own} and {@code other}, bound to the two public keys. */
  private static Cipher cipher(int mode, PrivateKey own, PublicKey other, PublicKey ephemeral, PublicKey node,
      byte[] nonce, byte[] context) throws GeneralSecurityException {
    KeyAgreement agreement = KeyAgreement.getInstance(NodeKey.ALGORITHM);
    agreement.init(own);
    agreement.doPhase(other, true);
    byte[] salt = ByteBuffer.allocate(ephemeral.getEncoded().length + node.getEncoded().length)
        .put(ephemeral.getEncoded()).put(node.getEncoded()).array();
    Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
    cipher.init(mode, new SecretKeySpec(Hkdf.sha256(agreement.generateSecret(), salt, INFO), "AES"),
        new GCMParameterSpec(128, nonce));
    cipher.updateAAD(context);
    return cipher;
  }

  /** Which resource, on which node, for which node key: length-prefixed, so that no two read alike. */
  private static byte[] context(HasMetadata work, String node, String fingerprint) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    var meta = work.getMetadata();
    for (String field : new String[] {work.getKind(), meta.getNamespace(), meta.getName(), meta.getUid(), node,
        fingerprint}) {
      byte[] bytes = String.valueOf(field).getBytes(StandardCharsets.UTF_8);
      out.writeBytes(ByteBuffer.allocate(4).putInt(bytes.length).array());
      out.writeBytes(bytes);
    }
    return out.toByteArray();
  }

  private static String describe(HasMetadata work) {
    return work.getKind() + " " + work.getMetadata().getNamespace() + "/" + work.getMetadata().getName();
  }
}
