package dev.stasis.kube;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a namespace's pack indexes from storage and hands on only those that can be trusted: made
 * under the current chunk key (others are skipped: their names cannot match this key's), with a
 * valid HMAC ({@link PackIndex#read}), next to a pack of exactly the length they describe. The rest
 * are reported, so the caller can say which object it did not trust; their chunks count as absent.
 * Agents (writing and restoring) and {@code stasis inspect} read pack indexes through this.
 */
public final class StoredPackIndexes {
  /** No pack index of a sane writer is larger (a 64 MiB pack of 4 KiB chunks is 0.8 MiB of index). */
  static final int MAX_INDEX_BYTES = 64 << 20;

  private StoredPackIndexes() {}

  /** A pack index that was not used, and why. */
  public record Untrusted(String uri, String reason) {
    @Override
    public String toString() {
      return uri + ": " + reason;
    }
  }

  @FunctionalInterface
  public interface Visitor {
    void index(PackIndex index) throws IOException;
  }

  /**
   * One LIST of {@code <namespace>/.packs/}, then each index of {@code key}'s id read and checked;
   * {@code visitor} gets the trusted ones.
   *
   * @return the indexes that were not trusted, in key order
   */
  public static List<Untrusted> forEach(ObjectStore store, String namespace, PackIndex.Key key, Visitor visitor)
      throws IOException {
    Map<String, Long> packBytes = new HashMap<>();
    List<String> indexes = new ArrayList<>();
    Map<String, Long> indexBytes = new HashMap<>();
    store.forEach(ArchiveLayout.packPrefix(namespace), object -> ArchiveLayout.ofPackKey(object.key())
        .filter(pack -> pack.namespace().equals(namespace))
        .ifPresent(pack -> {
          if (pack.index()) {
            indexes.add(pack.packId());
            indexBytes.put(pack.packId(), object.sizeBytes());
          } else {
            packBytes.put(pack.packId(), object.sizeBytes());
          }
        }));
    indexes.sort(null);
    List<Untrusted> untrusted = new ArrayList<>();
    for (String packId : indexes) {
      String indexKey = ArchiveLayout.packIndexKey(namespace, packId);
      if (indexBytes.get(packId) > MAX_INDEX_BYTES) {
        untrusted.add(new Untrusted(store.uri(indexKey), "it is " + indexBytes.get(packId) + " bytes, more than any"
            + " pack index Stasis writes"));
        continue;
      }
      byte[] bytes;
      try {
        bytes = store.read(indexKey);
      } catch (ObjectNotFoundException e) {
        continue; // deleted since the listing (the collector deletes a pack's index first): its chunks are absent
      }
      try {
        if (!PackIndex.keyIdOf(bytes).equals(key.keyId())) {
          continue;
        }
        PackIndex index = PackIndex.read(key, packId, bytes);
        Long stored = packBytes.get(packId);
        if (stored == null || stored != index.packBytes()) {
          untrusted.add(new Untrusted(store.uri(indexKey), "it describes a pack of " + index.packBytes() + " bytes, and "
              + (stored == null ? "there is no pack " + store.uri(ArchiveLayout.packKey(namespace, packId))
                  : "the pack is " + stored + " bytes")));
          continue;
        }
        visitor.index(index);
      } catch (ArchiveIntegrityException e) {
        untrusted.add(new Untrusted(store.uri(indexKey), e.getMessage()));
      }
    }
    return untrusted;
  }
}
