package dev.stasis.archive;

import java.security.InvalidKeyException;
import java.security.NoSuchAlgorithmException;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/** HKDF (RFC 5869) with SHA-256, for the keys Stasis derives from other keys. */
public final class Hkdf {
  private Hkdf() {}

  /** One block of output: the 32 bytes an AES-256 key needs. {@code salt} must not be empty. */
  public static byte[] sha256(byte[] inputKey, byte[] salt, byte[] info) {
    try {
      Mac hmac = Mac.getInstance("HmacSHA256");
      hmac.init(new SecretKeySpec(salt, "HmacSHA256"));
      byte[] pseudoRandomKey = hmac.doFinal(inputKey);
      hmac.init(new SecretKeySpec(pseudoRandomKey, "HmacSHA256"));
      hmac.update(info);
      hmac.update((byte) 1);
      return hmac.doFinal();
    } catch (NoSuchAlgorithmException | InvalidKeyException e) {
      throw new IllegalStateException("this JVM lacks HmacSHA256, which every Java 17 has", e);
    }
  }
}
