package dev.stasis.agent.checkpoint;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One lock per key (a PID, a folder), for as long as someone holds or waits for it: the lock of a
 * key nobody uses any more is forgotten, so an agent that checkpoints many processes over months
 * keeps no lock for each of them.
 */
final class KeyedLocks<K> {
  private final Map<K, Entry> locks = new HashMap<>();

  /** Held until closed. */
  interface Held extends AutoCloseable {
    @Override
    void close();
  }

  private static final class Entry {
    final ReentrantLock lock = new ReentrantLock();
    /** Holders and waiters; the entry goes when the last of them is done. Guarded by the map's lock. */
    int users;
  }

  /** Waits for the key's lock and holds it until closed. */
  Held lock(K key) {
    Entry entry;
    synchronized (locks) {
      entry = locks.computeIfAbsent(key, k -> new Entry());
      entry.users++;
    }
    entry.lock.lock();
    return () -> {
      entry.lock.unlock();
      synchronized (locks) {
        if (--entry.users == 0) {
          locks.remove(key);
        }
      }
    };
  }

  /** Keys someone holds or waits for now. */
  int inUse() {
    synchronized (locks) {
      return locks.size();
    }
  }
}
