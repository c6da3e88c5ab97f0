package dev.stasis.agent.work;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's work slots: at most {@code slots} checkpoints and restores run at once on this node
 * (CRIU's freeze, memory and the upload all compete for the same machine); the rest wait in
 * arrival order. Waiting work is only queued, never started: nothing is frozen or stopped for it
 * until its turn. Each waiting job hears its place in line, but coalesced: at most once per
 * {@code publishInterval}, only when its place changed, and far back in line only when it halved,
 * so that a long queue moving quickly does not turn into a stream of status writes.
 */
public final class NodeWorkQueue implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NodeWorkQueue.class);
  public static final int DEFAULT_SLOTS = 2;
  static final Duration DEFAULT_PUBLISH_INTERVAL = Duration.ofSeconds(1);
  /** Places from here to the front are all told. */
  private static final int NEAR_THE_FRONT = 3;

  /** Work to run in a slot, told its place in line while it waits. */
  public interface Job {
    void run();

    /** Its place in line (1: next) and how many jobs run; called from the queue's publisher thread. */
    void waiting(int position, int running);
  }

  private final int slots;
  private final Duration publishInterval;
  private final ExecutorService runners;
  private final ScheduledExecutorService publisher;
  // Guarded by this: jobs in arrival order, ids of running ones, places last told to each waiting job.
  private final LinkedHashMap<String, Job> waiting = new LinkedHashMap<>();
  private final Map<String, Job> running = new HashMap<>();
  private final Map<String, Integer> published = new HashMap<>();
  private boolean publishScheduled;
  private boolean stopped;
  private int mostRunning;

  public NodeWorkQueue(String node, int slots) {
    this(node, slots, DEFAULT_PUBLISH_INTERVAL);
  }

  NodeWorkQueue(String node, int slots, Duration publishInterval) {
    if (slots < 1) {
      throw new IllegalArgumentException("a node needs at least one work slot, got " + slots);
    }
    this.slots = slots;
    this.publishInterval = publishInterval;
    AtomicInteger threads = new AtomicInteger();
    this.runners = Executors.newFixedThreadPool(slots, task -> daemon(task, "node-work-" + node + "-" + threads.incrementAndGet()));
    this.publisher = Executors.newSingleThreadScheduledExecutor(task -> daemon(task, "node-work-queue-" + node));
  }

  private static Thread daemon(Runnable task, String name) {
    Thread thread = new Thread(task, name);
    thread.setDaemon(true);
    return thread;
  }

  /** Queues the job under {@code id} unless a job of that id waits or runs already; true if queued. */
  public synchronized boolean submit(String id, Job job) {
    if (stopped || waiting.containsKey(id) || running.containsKey(id)) {
      return false;
    }
    waiting.put(id, job);
    dispatch();
    return true;
  }

  /** Queues the job again after {@code delay}, e.g. when its run could not even begin (the API server was away). */
  void submitLater(String id, Job job, Duration delay) {
    try {
      publisher.schedule(() -> submit(id, job), delay.toMillis(), TimeUnit.MILLISECONDS);
    } catch (RejectedExecutionException e) {
      // closed: the agent stops, and the work stays Pending for the next one
    }
  }

  /** Whether work of this id waits or runs here: running work that is not held here was abandoned. */
  public synchronized boolean holds(String id) {
    return waiting.containsKey(id) || running.containsKey(id);
  }

  /** Whether work of this id runs now (as opposed to waiting, or not being here). */
  public synchronized boolean isRunning(String id) {
    return running.containsKey(id);
  }

  public int slots() {
    return slots;
  }

  public synchronized int running() {
    return running.size();
  }

  public synchronized int waiting() {
    return waiting.size();
  }

  /** The most jobs that ever ran at once here: never more than {@link #slots()}. */
  public synchronized int mostRunning() {
    return mostRunning;
  }

  private synchronized void dispatch() {
    while (!stopped && running.size() < slots && !waiting.isEmpty()) {
      var next = waiting.entrySet().iterator().next();
      waiting.remove(next.getKey());
      published.remove(next.getKey());
      running.put(next.getKey(), next.getValue());
      mostRunning = Math.max(mostRunning, running.size());
      runners.execute(() -> runToEnd(next.getKey(), next.getValue()));
    }
    if (!waiting.isEmpty() && !publishScheduled && !stopped) {
      publishScheduled = true;
      publisher.schedule(this::publishPositions, publishInterval.toMillis(), TimeUnit.MILLISECONDS);
    }
  }

  private void runToEnd(String id, Job job) {
    try {
      job.run();
    } catch (RuntimeException e) {
      log.error("node work {} failed unexpectedly", id, e);
    } finally {
      synchronized (this) {
        running.remove(id);
        notifyAll();
        dispatch();
      }
    }
  }

  /** Tells each waiting job whose place changed since it was last told; no call for the others. */
  void publishPositions() {
    List<Runnable> calls = new ArrayList<>();
    synchronized (this) {
      publishScheduled = false;
      int position = 0;
      int runningNow = running.size();
      for (var entry : waiting.entrySet()) {
        int place = ++position;
        Integer before = published.get(entry.getKey());
        if (worthTelling(before, place)) {
          published.put(entry.getKey(), place);
          Job job = entry.getValue();
          calls.add(() -> job.waiting(place, runningNow));
        }
      }
    }
    for (Runnable call : calls) { // outside the lock: these write statuses
      try {
        call.run();
      } catch (RuntimeException e) {
        log.warn("could not report a place in the queue: {}", e.getMessage());
      }
    }
  }

  /**
   * A first place, a place near the front, or one at least halfway closer to it than the last told:
   * a job in a queue of a thousand hears about ten places, not a thousand.
   */
  static boolean worthTelling(Integer before, int place) {
    return before == null || (place != before && (place <= NEAR_THE_FRONT || place <= before / 2));
  }

  /**
   * Starts no more work (what waits stays Pending for the next agent on this node) and waits up to
   * {@code grace} for the running jobs to end; true if they all did.
   */
  public boolean stopAndAwaitRunning(Duration grace) {
    long deadline = System.nanoTime() + grace.toNanos();
    synchronized (this) {
      stopped = true;
      waiting.clear();
      published.clear();
      while (!running.isEmpty()) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        try {
          TimeUnit.NANOSECONDS.timedWait(this, left);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return false;
        }
      }
      return true;
    }
  }

  @Override
  public void close() {
    stopAndAwaitRunning(Duration.ZERO);
    runners.shutdownNow();
    publisher.shutdownNow();
  }
}
