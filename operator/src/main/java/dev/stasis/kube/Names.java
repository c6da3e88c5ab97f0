package dev.stasis.kube;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** Fits names made of other names into Kubernetes' length limits, keeping them apart. */
public final class Names {
  /** Object names that are DNS subdomains (RFC 1123), such as Checkpoints'. */
  public static final int MAX_OBJECT_NAME = 253;
  public static final int MAX_LABEL_VALUE = 63;
  private static final int HASH_LENGTH = 8;

  private Names() {}

  /**
   * {@code name} itself when it fits; else its start, cut so that it ends in a letter or digit,
   * then {@code -} and 8 hex digits of the whole name's sha256: the same name always gives the same
   * result, and two names that share a long start still differ. A DNS subdomain or label value
   * stays one.
   */
  public static String shortened(String name, int maxLength) {
    if (name.length() <= maxLength) {
      return name;
    }
    String start = name.substring(0, maxLength - HASH_LENGTH - 1).replaceAll("[^a-z0-9]+$", "");
    return start + "-" + sha256(name).substring(0, HASH_LENGTH);
  }

  private static String sha256(String text) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JVM has SHA-256", e);
    }
  }
}
