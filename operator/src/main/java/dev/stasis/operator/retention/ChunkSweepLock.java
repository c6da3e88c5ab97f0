package dev.stasis.operator.retention;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;

/**
 * The operator's side of the chunk collection protocol (docs/dedup.md): per storage and namespace,
 * either a sweep of the namespace's chunks runs, or Checkpoints get the key to write chunks, never
 * both. A sweep starts only when no Checkpoint of the namespace that may write to the storage is
 * in flight; while it runs, no Checkpoint of the namespace is granted a chunk key for that
 * storage, so no chunk can be found present by a writer and deleted before its manifest exists.
 *
 * <p>The writers in flight are known from two sources: the grants this operator gave since it
 * started (in memory, so that a grant whose status write has not been read back yet counts) and a
 * fresh listing of the namespace's Checkpoints from the API server (so that grants of an operator
 * before a restart count too). S3 has no conditional delete, so this lock, not the store, is what
 * makes a sweep safe; a restore needs none (what a manifest refers to is never swept).
 *
 * <p>So that a namespace with Checkpoints always in flight (many schedules) is still swept: once
 * its sweeps have been held off for {@link #DRAIN_AFTER}, new Checkpoints of the namespace wait
 * too (it drains) until a sweep has run, which the collector then tries at every storage check
 * ({@link #isDraining}). A drain ends when the storage's collection is turned off
 * ({@link #stopDraining}), and by itself when no sweep asked about it for {@link #DRAIN_STALE}
 * (the storage was deleted).
 */
public final class ChunkSweepLock {
  /** A storage's chunks of one namespace. */
  public record Scope(String storage, String namespace) {}

  /**
   * A Checkpoint not yet Completed or Failed, as the API server lists it: its UID, name and
   * status.storage (null before it is assigned).
   */
  public record InFlight(String uid, String name, String storage) {}

  /** What asking for the lock of a scope gave: the lock, or the Checkpoints that hold it off. */
  public sealed interface Attempt permits Held, Busy {}

  /** The lock of a scope, held for one sweep until closed. */
  public final class Held implements Attempt, AutoCloseable {
    private final Scope scope;

    private Held(Scope scope) {
      this.scope = scope;
    }

    @Override
    public void close() {
      release(scope);
    }
  }

  /** A sweep may not start: these Checkpoints (names) may be writing chunks, or another sweep runs. */
  public record Busy(List<String> checkpoints) implements Attempt {}

  /** How long sweeps of a scope may be held off by Checkpoints in flight before new ones wait for a sweep. */
  public static final Duration DRAIN_AFTER = Duration.ofMinutes(30);
  /**
   * A drain that no sweep has asked about for this long is over (the collector is not coming
   * back): three of the storage's collection intervals.
   */
  static final Duration DRAIN_STALE = Duration.ofMinutes(30);

  private final Set<Scope> sweeping = new HashSet<>();
  private final Map<Scope, Set<String>> granted = new HashMap<>();
  /** Scopes whose last sweep attempts were held off: since when, and when it was last tried. */
  private final Map<Scope, Instant[]> heldOff = new HashMap<>();
  private final Duration drainAfter;
  private final Clock clock;

  public ChunkSweepLock() {
    this(DRAIN_AFTER, Clock.systemUTC());
  }

  public ChunkSweepLock(Duration drainAfter, Clock clock) {
    this.drainAfter = drainAfter;
    this.clock = clock;
  }

  /**
   * Before a Checkpoint's grant (with its chunk key) is issued: true and recorded, or false while a
   * sweep of the scope runs or the scope drains for one (the Checkpoint waits and asks again).
   */
  public synchronized boolean grant(Scope scope, String checkpointUid) {
    if (sweeping.contains(scope) || draining(scope)) {
      return false;
    }
    granted.computeIfAbsent(scope, s -> new HashSet<>()).add(checkpointUid);
    return true;
  }

  /** The Checkpoint is Completed, Failed or gone: its grant no longer counts (memory only; sweeps also look it up). */
  public synchronized void finished(String checkpointUid) {
    granted.values().forEach(uids -> uids.remove(checkpointUid));
    granted.values().removeIf(Set::isEmpty);
  }

  /** Whether Checkpoints of some namespace wait for a sweep of {@code storage} to run: it should run soon. */
  public synchronized boolean isDraining(String storage) {
    return heldOff.keySet().stream().anyMatch(scope -> scope.storage().equals(storage) && draining(scope));
  }

  /** The storage's collection is off: no Checkpoint waits for its sweeps. */
  public synchronized void stopDraining(String storage) {
    heldOff.keySet().removeIf(scope -> scope.storage().equals(storage));
  }

  private boolean draining(Scope scope) {
    Instant[] since = heldOff.get(scope);
    Instant now = clock.instant();
    return since != null && !now.isBefore(since[0].plus(drainAfter)) && now.isBefore(since[1].plus(DRAIN_STALE));
  }

  /**
   * Takes the lock of {@code scope} for a sweep, or says which Checkpoints are in flight.
   * {@code inFlight} is asked after grants are stopped, so a grant is either counted here or
   * waits for the sweep: never both missed.
   *
   * @param inFlight the namespace's Checkpoints that are not Completed or Failed, read fresh from the API server
   */
  public Attempt tryHold(Scope scope, Supplier<List<InFlight>> inFlight) {
    synchronized (this) {
      if (sweeping.contains(scope)) {
        return new Busy(List.of());
      }
      sweeping.add(scope);
    }
    Held held = new Held(scope);
    try {
      List<InFlight> listed = inFlight.get();
      List<String> writers;
      synchronized (this) {
        Set<String> grantedHere = granted.getOrDefault(scope, new HashSet<>());
        grantedHere.retainAll(listed.stream().map(InFlight::uid).collect(Collectors.toSet())); // the others ended
        writers = listed.stream()
            .filter(c -> scope.storage().equals(c.storage()) || grantedHere.contains(c.uid()))
            .map(InFlight::name).sorted().toList();
      }
      synchronized (this) {
        if (!writers.isEmpty()) {
          Instant now = clock.instant();
          Instant[] since = heldOff.get(scope);
          if (since == null || !now.isBefore(since[1].plus(DRAIN_STALE))) {
            heldOff.put(scope, new Instant[] {now, now});
          } else {
            since[1] = now;
          }
          held.close();
          return new Busy(writers);
        }
        heldOff.remove(scope);
      }
      return held;
    } catch (RuntimeException e) {
      held.close();
      throw e;
    }
  }

  private synchronized void release(Scope scope) {
    sweeping.remove(scope);
  }
}
