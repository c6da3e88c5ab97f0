package dev.stasis.kube;

import dev.stasis.archive.Sha256;
import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;

/**
 * An agent's own key pair (X25519): it publishes the public key in its node's NodeProfile, which
 * only the agent of that node may write (the admission policy stasis-agent-own-node), and the
 * operator seals to it what the node's work needs ({@link WorkGrants}): storage credentials and the
 * keys of the very archives it writes or reads. The private key stays on the node, in the agent's
 * work folder (readable by root only), so that a restarted agent still opens the grants of work
 * it was given before.
 */
public final class NodeKey {
  static final String ALGORITHM = "X25519";
  private static final String FILE_NAME = "node-key";

  private final PrivateKey privateKey;
  private final PublicKey publicKey;

  private NodeKey(PrivateKey privateKey, PublicKey publicKey) {
    this.privateKey = privateKey;
    this.publicKey = publicKey;
  }

  /** The key kept in {@code workDir}, made there the first time. */
  public static synchronized NodeKey inWorkDir(Path workDir) throws IOException {
    Path file = workDir.resolve(FILE_NAME);
    if (!Files.exists(file)) {
      create(file);
    }
    return read(file);
  }

  private static void create(Path file) throws IOException {
    KeyPair pair;
    try {
      pair = KeyPairGenerator.getInstance(ALGORITHM).generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("this JVM lacks X25519, which every Java 17 has", e);
    }
    Files.createDirectories(file.getParent());
    Path written = Files.createTempFile(file.getParent(), "." + FILE_NAME, ".tmp",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    try {
      Files.write(written, (Base64.getEncoder().encodeToString(pair.getPrivate().getEncoded()) + "\n"
          + Base64.getEncoder().encodeToString(pair.getPublic().getEncoded()) + "\n").getBytes());
      try {
        Files.move(written, file, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(written, file);
      }
    } finally {
      Files.deleteIfExists(written);
    }
  }

  private static NodeKey read(Path file) throws IOException {
    String[] lines = Files.readString(file).strip().split("\n");
    try {
      KeyFactory keys = KeyFactory.getInstance(ALGORITHM);
      return new NodeKey(keys.generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(lines[0]))),
          keys.generatePublic(new X509EncodedKeySpec(Base64.getDecoder().decode(lines[1]))));
    } catch (GeneralSecurityException | IllegalArgumentException | ArrayIndexOutOfBoundsException e) {
      throw new IOException("the agent's key in " + file + " cannot be read (" + e.getMessage() + "): delete it, and"
          + " the agent makes a new one (the operator seals the node's work to it again)", e);
    }
  }

  /** What the NodeProfile publishes: the public key, X.509-encoded, in base64. */
  public String publicKey() {
    return Base64.getEncoder().encodeToString(publicKey.getEncoded());
  }

  /** A short name of a published public key, which a sealed grant names. */
  public static String fingerprint(String publicKey) {
    return Sha256.hexOf(Base64.getDecoder().decode(publicKey)).substring(0, 16);
  }

  public String fingerprint() {
    return fingerprint(publicKey());
  }

  PrivateKey privateKey() {
    return privateKey;
  }

  PublicKey publicKeyObject() {
    return publicKey;
  }
}
