package dev.stasis.archive;

import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The keys of one storage: new archives are encrypted with the current one, and every key an
 * archive may still name stays here so that it can be decrypted after rotation.
 */
public record ArchiveKeys(String currentKeyId, Map<String, ArchiveKey> byId) {
  public ArchiveKeys {
    byId = Map.copyOf(byId);
    if (!byId.containsKey(currentKeyId)) {
      throw new IllegalArgumentException("the current key '" + currentKeyId + "' is not among the keys "
          + new TreeMap<>(byId).keySet());
    }
  }

  public ArchiveKey current() {
    return byId.get(currentKeyId);
  }

  public Optional<ArchiveKey> find(String keyId) {
    return Optional.ofNullable(keyId == null ? null : byId.get(keyId));
  }
}
