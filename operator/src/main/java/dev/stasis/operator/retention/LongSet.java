package dev.stasis.operator.retention;

/**
 * An open-addressing set of longs, 8 bytes an entry and at most half full: the first 64 bits of chunk
 * names ({@link #prefixOf}), which are HMAC outputs and so already uniform.
 */
final class LongSet {
  private long[] table = new long[1024];
  private int size;
  private boolean hasZero;

  /** The first 64 bits of a chunk name (64 hex digits). */
  static long prefixOf(String chunkName) {
    return Long.parseUnsignedLong(chunkName.substring(0, 16), 16);
  }

  void add(String chunkName) {
    add(prefixOf(chunkName));
  }

  boolean contains(String chunkName) {
    return contains(prefixOf(chunkName));
  }

  void add(long value) {
    if (value == 0) {
      size += hasZero ? 0 : 1;
      hasZero = true;
      return;
    }
    if (insert(table, value)) {
      size++;
      if (size * 2 > table.length) {
        long[] larger = new long[table.length * 2];
        for (long v : table) {
          if (v != 0) {
            insert(larger, v);
          }
        }
        table = larger;
      }
    }
  }

  boolean contains(long value) {
    if (value == 0) {
      return hasZero;
    }
    int mask = table.length - 1;
    for (int i = spread(value) & mask; table[i] != 0; i = (i + 1) & mask) {
      if (table[i] == value) {
        return true;
      }
    }
    return false;
  }

  int size() {
    return size;
  }

  private static boolean insert(long[] table, long value) {
    int mask = table.length - 1;
    int i = spread(value) & mask;
    for (; table[i] != 0; i = (i + 1) & mask) {
      if (table[i] == value) {
        return false;
      }
    }
    table[i] = value;
    return true;
  }

  /** Names are HMAC outputs, already uniform; their low bits are as good as any. */
  private static int spread(long value) {
    return (int) (value ^ (value >>> 32));
  }
}
