package dev.stasis.archive;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * Which checkpoint (and which of its containers) an archive belongs to. An encrypted archive is
 * bound to it: its key is derived for it and every segment authenticates it, so the archive of one
 * checkpoint copied over another's fails to decrypt there.
 *
 * @param container the container of a pod checkpoint; empty for a process checkpoint
 */
public record ArchiveIdentity(String namespace, String checkpointUid, String container) {
  private static final byte[] DOMAIN = "stasis.dev/archive-identity/v1".getBytes(StandardCharsets.US_ASCII);

  public ArchiveIdentity {
    Objects.requireNonNull(namespace, "namespace");
    Objects.requireNonNull(checkpointUid, "checkpointUid");
    Objects.requireNonNull(container, "container");
  }

  /** A process checkpoint's single archive. */
  public static ArchiveIdentity ofProcess(String namespace, String checkpointUid) {
    return new ArchiveIdentity(namespace, checkpointUid, "");
  }

  /** The identity and the key id as bytes, each field length-prefixed so that no two identities encode alike. */
  byte[] encode(String keyId) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(DOMAIN);
    for (String field : new String[] {namespace, checkpointUid, container, keyId}) {
      byte[] bytes = field.getBytes(StandardCharsets.UTF_8);
      out.writeBytes(ByteBuffer.allocate(4).putInt(bytes.length).array());
      out.writeBytes(bytes);
    }
    return out.toByteArray();
  }

  @Override
  public String toString() {
    return namespace + "/" + checkpointUid + (container.isEmpty() ? "" : "/" + container);
  }
}
