package dev.stasis.operator.retention;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.dedup.ChunkObjects;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.operator.retention.ChunkMark.ChunkReferencesInvalid;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * The packs of one namespace ({@code <ns>/.packs/}) collected against the namespace's
 * {@link ChunkMark}, while its sweep lock is held (so no writer adds a pack or relies on one
 * meanwhile). Every pack index is read and its HMAC checked before anything is deleted; one that
 * fails, or whose key the storage no longer holds, stops the namespace's collection
 * ({@link ChunkReferencesInvalid}). Then, of the packs and indexes older than the grace period:
 * <ul>
 *   <li>a pack none of whose chunks is marked goes, its index first (an index never names a missing pack);</li>
 *   <li>a pack without an index (its writer died between the two PUTs) goes: no reader can find its chunks;</li>
 *   <li>an index without a pack goes: it names chunks that are not there;</li>
 *   <li>a pack whose marked chunks are less than half its bytes is repacked, and so, while the
 *       namespace's packs hold more unused bytes than {@code maxUnusedPercent} of the live ones
 *       (the storage's {@code garbageCollection.maxUnusedPercent}, restic's prune {@code --max-unused}),
 *       are the others with the most unused bytes first. Repacking fetches the
 *       pack in one GET, opens each marked chunk and checks it against its name, writes the marked
 *       chunks into new packs (once, when two repacked packs hold one; their index after them), and
 *       only then deletes the old index, then the old pack. A restore whose hint names the old pack
 *       finds the chunk by its name in the new pack's index.</li>
 * </ul>
 * So after a pass the unused bytes in packs are at most {@code maxUnusedPercent} of the live ones, plus
 * what packs younger than the grace period hold unused (they are never touched).
 * Memory: the indexes of packs past grace that are partly unused while choosing which to repack,
 * the names held by kept packs ({@link LongSet}, for
 * usage), and while repacking the names moved, one old pack and one new pack's bytes.
 */
final class PackCollection {
  /** What repacking writes at most into one new pack: the size the agent's packs aim at. */
  static final int REPACK_TARGET_BYTES = 16 << 20;
  private static final SecureRandom RANDOM = new SecureRandom();

  /**
   * What collecting a namespace's packs did and left: packs deleted (dead or orphaned; indexes
   * without a pack count too), packs repacked, new packs written, bytes freed (deleted minus
   * written), bytes of packs and indexes kept, and the distinct chunk names the kept packs hold.
   */
  record Result(int deleted, int repacked, int written, long freedBytes, long storedBytes, LongSet held) {}

  private final ObjectStore store;
  private final String namespace;
  private final ChunkMark mark;
  private final ChunkKeys keys;
  private final Instant settled;
  /**
   * The unused bytes (stored in packs, no marked chunk) a namespace's packs may keep, in percent of
   * the marked bytes they hold. The default 10% keeps a keepLast-5 series within 1.10 of what its
   * checkpoints refer to, rewriting 0.13 copies of the memory per collection on average (docs/dedup.md).
   */
  private final int maxUnusedPercent;
  private final Map<String, ChunkKeys.NamespaceKey> keysById = new HashMap<>();
  private final LongSet held = new LongSet();
  private int deleted;
  private int repacked;
  private int written;
  private long deletedBytes;
  private long writtenBytes;
  private long storedBytes;

  private PackCollection(ObjectStore store, String namespace, ChunkMark mark, ChunkKeys keys, Instant settled,
      int maxUnusedPercent) {
    this.store = store;
    this.namespace = namespace;
    this.mark = mark;
    this.keys = keys;
    this.settled = settled;
    this.maxUnusedPercent = maxUnusedPercent;
  }

  /** A pack id and its two objects as listed (either may be missing). */
  private static final class Listed {
    StoredObject pack;
    StoredObject index;

    Instant newest() {
      Instant p = pack == null ? Instant.MIN : pack.lastModified();
      Instant i = index == null ? Instant.MIN : index.lastModified();
      return p.isAfter(i) ? p : i;
    }

    long bytes() {
      return (pack == null ? 0 : pack.sizeBytes()) + (index == null ? 0 : index.sizeBytes());
    }
  }

  /**
   * @param settled objects last modified before it are older than the grace period
   * @param maxUnusedPercent the unused bytes the packs may keep, in percent of the marked ones
   * @throws ChunkReferencesInvalid when a pack index (or a chunk to be moved) cannot be trusted:
   *     nothing is deleted after that
   */
  static Result collect(ObjectStore store, String namespace, ChunkMark mark, ChunkKeys keys, Instant settled,
      int maxUnusedPercent) throws IOException, ChunkReferencesInvalid {
    return new PackCollection(store, namespace, mark, keys, settled, maxUnusedPercent).collect();
  }

  private Result collect() throws IOException, ChunkReferencesInvalid {
    Map<String, Listed> listed = new TreeMap<>();
    store.forEach(ArchiveLayout.packPrefix(namespace), object -> ArchiveLayout.ofPackKey(object.key())
        .filter(p -> p.namespace().equals(namespace)).ifPresent(p -> {
          Listed l = listed.computeIfAbsent(p.packId(), id -> new Listed());
          if (p.index()) {
            l.index = object;
          } else {
            l.pack = object;
          }
        }));
    List<String> doomedIndexes = new ArrayList<>();
    List<String> doomedPacks = new ArrayList<>();
    List<String> toRepack = new ArrayList<>();
    List<Unused> wasteful = new ArrayList<>();
    long liveBytes = 0;
    long unusedBytes = 0;
    for (var entry : listed.entrySet()) {
      String packId = entry.getKey();
      Listed l = entry.getValue();
      boolean old = l.newest().isBefore(settled);
      if (l.index == null || l.pack == null) {
        if (old) {
          (l.index == null ? doomedPacks : doomedIndexes).add(l.index == null ? l.pack.key() : l.index.key());
          deleted++;
          deletedBytes += l.bytes();
        } else {
          storedBytes += l.bytes(); // being written (pack before index), or young
        }
        continue;
      }
      PackIndex index = verifiedIndex(packId);
      if (index.packBytes() != l.pack.sizeBytes()) {
        throw new ChunkReferencesInvalid("pack " + store.uri(l.pack.key()) + " is " + l.pack.sizeBytes()
            + " bytes, but its index says " + index.packBytes() + ": it was truncated or replaced. Put it back from a"
            + " backup; the checkpoints whose chunks it holds cannot be restored without it");
      }
      long live = 0;
      for (PackIndex.Entry e : index.entries()) {
        live += mark.contains(e.name()) ? e.storedBytes() : 0;
      }
      if (old && live == 0) {
        doomedIndexes.add(l.index.key());
        doomedPacks.add(l.pack.key());
        deleted++;
        deletedBytes += l.bytes();
        continue;
      }
      liveBytes += live;
      if (old && 2 * live < index.packBytes()) {
        toRepack.add(packId);
      } else if (old && live < index.packBytes()) {
        wasteful.add(new Unused(packId, index.packBytes() - live, index));
        unusedBytes += index.packBytes() - live;
      } else {
        keep(l, index);
      }
    }
    wasteful.sort(Comparator.comparingLong(Unused::bytes).reversed().thenComparing(Unused::packId));
    for (Unused u : wasteful) {
      if (unusedBytes * 100 > maxUnusedPercent * liveBytes) {
        toRepack.add(u.packId());
        unusedBytes -= u.bytes();
      } else {
        keep(listed.get(u.packId()), u.index());
      }
    }
    store.delete(doomedIndexes);
    store.delete(doomedPacks);
    repack(toRepack, listed);
    return new Result(deleted, repacked, written, deletedBytes - writtenBytes, storedBytes, held);
  }

  /** A pack past grace, partly live, that repacking would shrink by {@code bytes}. */
  private record Unused(String packId, long bytes, PackIndex index) {}

  private void keep(Listed l, PackIndex index) {
    storedBytes += l.bytes();
    index.entries().forEach(e -> held.add(e.name()));
  }

  /** The pack's index, authenticated under the key it names. */
  private PackIndex verifiedIndex(String packId) throws IOException, ChunkReferencesInvalid {
    String key = ArchiveLayout.packIndexKey(namespace, packId);
    byte[] bytes = store.read(key);
    try {
      return PackIndex.read(indexKey(PackIndex.keyIdOf(bytes)), packId, bytes);
    } catch (ArchiveIntegrityException e) {
      throw new ChunkReferencesInvalid("pack index " + store.uri(key) + " cannot be trusted: " + e.getMessage()
          + ". Put it back from a backup (its pack's chunks cannot be found without it)");
    }
  }

  private PackIndex.Key indexKey(String keyId) throws IOException, ChunkReferencesInvalid {
    ChunkKeys.NamespaceKey key = namespaceKey(keyId);
    return PackIndex.Key.forNamespace(key.key().bytes(), keyId, namespace);
  }

  private ChunkKeys.NamespaceKey namespaceKey(String keyId) throws IOException, ChunkReferencesInvalid {
    ChunkKeys.NamespaceKey key = keysById.get(keyId);
    if (key == null) {
      Optional<ChunkKeys.NamespaceKey> found = keys.find(namespace, keyId);
      if (found.isEmpty()) {
        throw new ChunkReferencesInvalid("the packs of namespace " + namespace + " include ones made with key '"
            + keyId + "', which the storage no longer holds (neither its encryption Secret nor its chunk secret), so"
            + " their indexes cannot be checked: put that key back");
      }
      key = found.get();
      keysById.put(keyId, key);
    }
    return key;
  }

  /**
   * Moves the marked chunks of {@code packIds} that no kept pack holds into new packs, one key id at
   * a time (a pack's chunks are all made with one key); each old pack goes once the new pack
   * holding its chunks and that pack's index are stored.
   */
  private void repack(List<String> packIds, Map<String, Listed> listed) throws IOException, ChunkReferencesInvalid {
    Map<String, List<PackIndex>> byKey = new TreeMap<>();
    for (String packId : packIds) {
      PackIndex index = verifiedIndex(packId);
      byKey.computeIfAbsent(index.keyId(), k -> new ArrayList<>()).add(index);
    }
    // exact names, not 64-bit prefixes: a chunk wrongly taken for one already moved would be lost
    Set<String> moved = new HashSet<>();
    for (var group : byKey.entrySet()) {
      ChunkKeys.NamespaceKey key = namespaceKey(group.getKey());
      ChunkObjects chunks = ChunkObjects.forNamespace(key.key(), namespace, key.sealed(), false);
      NewPack next = new NewPack(group.getKey());
      for (PackIndex old : group.getValue()) {
        String packKey = ArchiveLayout.packKey(namespace, old.packId());
        byte[] pack;
        try {
          pack = store.read(packKey);
        } catch (ObjectNotFoundException e) {
          continue; // deleted since it was listed: only this collector deletes packs, so by hand
        }
        for (PackIndex.Entry e : old.entries()) {
          if (!mark.contains(e.name()) || !moved.add(e.name())) {
            continue;
          }
          byte[] object = Arrays.copyOfRange(pack, (int) e.offset(), (int) e.offset() + e.storedBytes());
          try {
            chunks.open(e.name(), object, e.bytes());
          } catch (ArchiveIntegrityException ex) {
            throw new ChunkReferencesInvalid("chunk " + e.name() + " in pack " + store.uri(packKey) + " does not"
                + " match its name (" + ex.getMessage() + "): the pack was altered, and the checkpoints that use the"
                + " chunk cannot be restored from it; the pack is kept. Put it back from a backup");
          }
          next.add(e, object);
          held.add(e.name());
        }
        next.replaces(old.packId(), listed.get(old.packId()).bytes());
        repacked++;
        if (next.bytes() >= REPACK_TARGET_BYTES) {
          next.store(key);
          next = new NewPack(group.getKey());
        }
      }
      next.store(key);
    }
  }

  /** A pack being filled with moved chunks, and the old packs it replaces. */
  private final class NewPack {
    final String keyId;
    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    final List<PackIndex.Entry> entries = new ArrayList<>();
    final List<String> replaced = new ArrayList<>();
    long replacedBytes;

    NewPack(String keyId) {
      this.keyId = keyId;
    }

    void add(PackIndex.Entry entry, byte[] object) {
      entries.add(new PackIndex.Entry(entry.name(), bytes.size(), entry.storedBytes(), entry.bytes()));
      bytes.writeBytes(object);
    }

    void replaces(String packId, long bytes) {
      replaced.add(packId);
      replacedBytes += bytes;
    }

    int bytes() {
      return bytes.size();
    }

    /** The pack, then its index, then the old packs' indexes, then the old packs. */
    void store(ChunkKeys.NamespaceKey key) throws IOException {
      if (!entries.isEmpty()) {
        String packId = newPackId();
        byte[] index = new PackIndex(keyId, packId, entries).encode(PackIndex.Key.forNamespace(key.key().bytes(),
            keyId, namespace));
        store.put(ArchiveLayout.packKey(namespace, packId), bytes.toByteArray());
        store.put(ArchiveLayout.packIndexKey(namespace, packId), index);
        written++;
        writtenBytes += bytes.size() + index.length;
        storedBytes += bytes.size() + index.length;
      }
      store.delete(replaced.stream().map(id -> ArchiveLayout.packIndexKey(namespace, id)).toList());
      store.delete(replaced.stream().map(id -> ArchiveLayout.packKey(namespace, id)).toList());
      deletedBytes += replacedBytes;
    }
  }

  private static String newPackId() {
    byte[] id = new byte[16];
    RANDOM.nextBytes(id);
    return HexFormat.of().formatHex(id);
  }
}
