package dev.stasis.kube;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Reads a namespace's pack indexes from storage and hands on only those that can be trusted: made
 * under the current chunk key (others are skipped: their names cannot match this key's), with a
 * valid HMAC ({@link PackIndex#read}), next to a pack of exactly the length they describe. The rest
 * are reported, so the caller can say which object it did not trust; their chunks count as absent.
 * Agents (writing and restoring) and {@code stasis inspect} read pack indexes through this,
 * {@value #READS_IN_FLIGHT} at a time, each handed on in key order.
 */
public final class StoredPackIndexes {
  /** No pack index of a sane writer is larger (a 64 MiB pack of 4 KiB chunks is 0.8 MiB of index). */
  static final int MAX_INDEX_BYTES = 64 << 20;
  /**
   * Indexes read at once: a namespace holds one per 64 MiB pack, and a writer or a restore reads them
   * all before it starts, one request's latency each when read one at a time.
   */
  static final int READS_IN_FLIGHT = 8;

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
    List<Untrusted> untrusted = new ArrayList<>();
    for (var listed : indexBytes.entrySet()) {
      if (listed.getValue() > MAX_INDEX_BYTES) {
        indexes.remove(listed.getKey());
        untrusted.add(new Untrusted(store.uri(ArchiveLayout.packIndexKey(namespace, listed.getKey())), "it is "
            + listed.getValue() + " bytes, more than any pack index Stasis writes"));
      }
    }
    indexes.sort(null);
    ExecutorService reads = Executors.newFixedThreadPool(Math.max(1, Math.min(READS_IN_FLIGHT, indexes.size())), r -> {
      Thread thread = new Thread(r, "pack-index-read-" + namespace);
      thread.setDaemon(true);
      return thread;
    });
    try {
      Deque<Future<byte[]>> inFlight = new ArrayDeque<>();
      int next = 0;
      for (String packId : indexes) {
        for (; next < indexes.size() && inFlight.size() < READS_IN_FLIGHT; next++) {
          String ahead = indexes.get(next);
          inFlight.add(reads.submit(() -> readIndex(store, namespace, ahead)));
        }
        byte[] bytes = await(inFlight.removeFirst());
        String indexKey = ArchiveLayout.packIndexKey(namespace, packId);
        if (bytes == null) {
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
    } finally {
      reads.shutdownNow();
    }
    untrusted.sort(Comparator.comparing(Untrusted::uri));
    return untrusted;
  }

  /** The index's bytes; null when it was deleted since the listing. */
  private static byte[] readIndex(ObjectStore store, String namespace, String packId) throws IOException {
    try {
      return store.read(ArchiveLayout.packIndexKey(namespace, packId));
    } catch (ObjectNotFoundException e) {
      return null;
    }
  }

  private static byte[] await(Future<byte[]> read) throws IOException {
    try {
      return read.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while reading pack indexes");
    } catch (ExecutionException e) {
      if (e.getCause() instanceof IOException io) {
        throw io;
      }
      if (e.getCause() instanceof RuntimeException runtime) {
        throw runtime;
      }
      throw new IOException(e.getCause());
    }
  }
}
