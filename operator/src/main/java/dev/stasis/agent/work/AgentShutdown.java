package dev.stasis.agent.work;

import dev.stasis.agent.WorkFailure;
import dev.stasis.storage.ObjectUpload;
import java.io.OutputStream;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An agent that is told to stop (SIGTERM: a drain, a rollout) takes no new work, and cuts off the
 * uploads still running, so that their checkpoints end Failed with reason {@value #REASON} and no
 * partial object is left behind, instead of staying Running until the next agent resolves them.
 */
public final class AgentShutdown {
  public static final String REASON = "AgentShutdown";
  private static final Logger log = LoggerFactory.getLogger(AgentShutdown.class);

  /** The reasons a job fails with when the agent cuts it off: an aborted upload, an interrupted CRIU. */
  private static final Set<String> CUT_OFF = Set.of("StorageFailed", "Interrupted");

  /** How long running work gets to end and write its status once its uploads were cut off. */
  static final Duration WORK_GRACE = Duration.ofSeconds(25);

  private final Set<ObjectUpload> uploads = ConcurrentHashMap.newKeySet();
  private final Set<Runnable> cutOffs = ConcurrentHashMap.newKeySet();
  private final List<NodeWorkQueue> queues = new CopyOnWriteArrayList<>();
  private volatile boolean stopping;

  /**
   * Stops taking work and aborts every running upload; then waits (a while) for the jobs to fail
   * and report it. Work still waiting for a slot stays Pending for the next agent on this node.
   */
  public void begin() {
    stopping = true;
    if (!uploads.isEmpty()) {
      log.info("shutting down: aborting {} running upload(s)", uploads.size());
    }
    uploads.forEach(ObjectUpload::abort);
    cutOffs.forEach(Runnable::run);
    for (NodeWorkQueue queue : queues) {
      if (!queue.stopAndAwaitRunning(WORK_GRACE)) {
        log.warn("shutting down: {} job(s) still running after {}s", queue.running(), WORK_GRACE.toSeconds());
      }
      queue.close();
    }
  }

  /** The queue's running work is awaited, and nothing new started, once the agent stops. */
  void awaitOnStop(NodeWorkQueue queue) {
    queues.add(queue);
  }

  public boolean isStopping() {
    return stopping;
  }

  /** Whether new work may start; while stopping it stays Pending for the next agent on this node. */
  public boolean acceptsWork() {
    return !stopping;
  }

  /** The upload, cut off if the agent stops before it is committed (at once, if it stops already). */
  public ObjectUpload track(ObjectUpload upload) {
    ObjectUpload tracked = new ObjectUpload() {
      @Override
      public OutputStream stream() {
        return upload.stream();
      }

      // Finished one way or another, it is no longer the shutdown's to cut off.
      @Override
      public long commit() throws java.io.IOException {
        long stored = upload.commit();
        uploads.remove(this);
        return stored;
      }

      @Override
      public void abort() {
        upload.abort();
        uploads.remove(this);
      }

      @Override
      public void close() {
        uploads.remove(this);
        upload.close();
      }
    };
    uploads.add(tracked);
    if (stopping) {
      tracked.abort();
    }
    return tracked;
  }

  /** Registered work that the stopping agent cuts off, until it is closed (its work ended). */
  public interface Registration extends AutoCloseable {
    @Override
    void close();
  }

  /**
   * For work that writes to storage beside its tracked upload: a deduplicated checkpoint stores its
   * packs before it writes a byte of its archive, so aborting that upload alone would let it go on
   * past the agent's grace period. {@code cutOff} runs if the agent stops before the registration is
   * closed (at once, if it stops already); it must make the work fail soon with an IOException.
   */
  public Registration cutOffOnStop(Runnable cutOff) {
    Runnable registered = cutOff::run; // its own identity: one work may register the same method twice
    cutOffs.add(registered);
    if (stopping) {
      registered.run();
    }
    return () -> cutOffs.remove(registered);
  }

  /** A checkpoint whose upload or CRIU run the stopping agent cut off says so. */
  public WorkFailure explain(WorkFailure failure, String node) {
    if (!stopping || !CUT_OFF.contains(failure.reason())) {
      return failure;
    }
    return new WorkFailure(REASON, "the agent on node " + node + " was stopped while this ran ("
        + failure.getMessage() + "); nothing was kept: create a new one", failure.logTail());
  }
}
