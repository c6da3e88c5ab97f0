package dev.stasis.operator.retention;

import dev.stasis.archive.ChunkKey;
import java.io.IOException;
import java.util.Optional;

/**
 * A storage's chunk keys as the collector needs them to trust and move a namespace's packs: the
 * namespace's chunk key of the id a pack index names (it authenticates the index and names, and
 * when the storage encrypts seals, the chunks in the pack).
 */
@FunctionalInterface
public interface ChunkKeys {
  /** The chunk key {@code keyId} of {@code namespace}; empty when the storage no longer holds that key. */
  Optional<NamespaceKey> find(String namespace, String keyId) throws IOException;

  /** A namespace's chunk key, and whether the chunks made with it are sealed (the storage encrypted them). */
  record NamespaceKey(ChunkKey key, boolean sealed) {}
}
