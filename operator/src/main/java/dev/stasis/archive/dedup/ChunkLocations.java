package dev.stasis.archive.dedup;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

/**
 * Where each chunk a namespace already stores is, for a writer (and for a restore whose hinted pack
 * is gone): name to location and stored length,
 * in flat arrays (open addressing on the name's first 8 bytes, which are an HMAC's and so uniform)
 * instead of a map of strings: 49 bytes a slot, at most three quarters full, so 65-130 bytes a chunk
 * (a {@code HashMap<String, …>} entry alone is over 200). It also remembers which chunks this
 * checkpoint referred to. Not thread-safe: its owner locks.
 */
public final class ChunkLocations {
  private static final int LOOSE = -1;
  private static final HexFormat HEX = HexFormat.of();

  /** Four longs a slot: the 32-byte name; a slot whose four longs are all 0 is free (no HMAC is all zeros). */
  private long[] names;
  private int[] packs;
  private long[] offsets;
  private int[] storedBytes;
  private boolean[] referenced;
  private int size;
  private int referencedCount;
  private final List<String> packIds = new ArrayList<>();
  private final Map<String, Integer> packNumbers = new HashMap<>();

  public ChunkLocations(int expected) {
    allocate(Integer.highestOneBit(Math.max(16, expected * 4 / 3)) << 1);
  }

  public int size() {
    return size;
  }

  /** The chunks {@link #refer} was called for, each once. */
  public int referenced() {
    return referencedCount;
  }

  /** Adds a chunk unless it is known already; returns whether it was added. */
  public boolean add(String name, ChunkLocation location, int stored) {
    long[] key = key(name);
    int slot = slot(key);
    if (!free(slot)) {
      return false;
    }
    if ((size + 1) * 4L > capacity() * 3L) {
      grow();
      slot = slot(key);
    }
    System.arraycopy(key, 0, names, slot * 4, 4);
    packs[slot] = location.loose() ? LOOSE : packNumber(location.packId());
    offsets[slot] = location.offset();
    storedBytes[slot] = stored;
    size++;
    return true;
  }

  /** The chunk as this checkpoint's index refers to it, marking it referred to; null when the namespace lacks it. */
  public ChunkIndex.ChunkRef refer(String name, int bytes) {
    int slot = slot(key(name));
    if (free(slot)) {
      return null;
    }
    if (!referenced[slot]) {
      referenced[slot] = true;
      referencedCount++;
    }
    return ref(slot, name, bytes);
  }

  /** The chunk where the namespace stores it, without marking it referred to; null when the namespace lacks it. */
  public ChunkIndex.ChunkRef find(String name, int bytes) {
    int slot = slot(key(name));
    return free(slot) ? null : ref(slot, name, bytes);
  }

  private ChunkIndex.ChunkRef ref(int slot, String name, int bytes) {
    ChunkLocation location = packs[slot] == LOOSE ? ChunkLocation.LOOSE
        : ChunkLocation.inPack(packIds.get(packs[slot]), offsets[slot]);
    return new ChunkIndex.ChunkRef(name, bytes, storedBytes[slot], location);
  }

  private int packNumber(String packId) {
    return packNumbers.computeIfAbsent(packId, id -> {
      packIds.add(id);
      return packIds.size() - 1;
    });
  }

  private static long[] key(String name) {
    byte[] bytes = HEX.parseHex(name);
    long[] key = new long[4];
    for (int i = 0; i < 32; i++) {
      key[i / 8] = (key[i / 8] << 8) | (bytes[i] & 0xff);
    }
    return key;
  }

  /** The slot holding {@code key}, or the free slot where it would go. */
  private int slot(long[] key) {
    int mask = capacity() - 1;
    int slot = (int) (key[0] ^ (key[0] >>> 32)) & mask;
    while (!free(slot) && !Arrays.equals(names, slot * 4, slot * 4 + 4, key, 0, 4)) {
      slot = (slot + 1) & mask;
    }
    return slot;
  }

  private boolean free(int slot) {
    int at = slot * 4;
    return names[at] == 0 && names[at + 1] == 0 && names[at + 2] == 0 && names[at + 3] == 0;
  }

  private int capacity() {
    return packs.length;
  }

  private void allocate(int capacity) {
    names = new long[capacity * 4];
    packs = new int[capacity];
    offsets = new long[capacity];
    storedBytes = new int[capacity];
    referenced = new boolean[capacity];
  }

  private void grow() {
    long[] oldNames = names;
    int[] oldPacks = packs;
    long[] oldOffsets = offsets;
    int[] oldStored = storedBytes;
    boolean[] oldReferenced = referenced;
    allocate(capacity() * 2);
    long[] key = new long[4];
    for (int old = 0; old < oldPacks.length; old++) {
      System.arraycopy(oldNames, old * 4, key, 0, 4);
      if (key[0] == 0 && key[1] == 0 && key[2] == 0 && key[3] == 0) {
        continue;
      }
      int slot = slot(key);
      System.arraycopy(key, 0, names, slot * 4, 4);
      packs[slot] = oldPacks[old];
      offsets[slot] = oldOffsets[old];
      storedBytes[slot] = oldStored[old];
      referenced[slot] = oldReferenced[old];
    }
  }
}
