package dev.stasis.agent.work;

import dev.stasis.api.ProgressStatus;
import dev.stasis.metrics.StasisMetrics;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How far one attempt of node work has come ({@code status.progress}): its step, and the bytes done
 * of those expected. The thread that moves the bytes counts them here, which costs an atomic add;
 * every {@link #INTERVAL} the agent's progress reporter writes the progress, if it changed since
 * the last write. So a long checkpoint shows it moving with at most one status write per interval,
 * and work that stalls (or is too short to reach the first interval) writes none.
 *
 * <p>The writes go through the work's lifecycle ({@code WorkLifecycle#progress}), which checks on
 * the newest copy that the attempt still runs on this node: a progress never undoes what the
 * operator or the job itself wrote. The job's last write (Completed) keeps the last progress, at
 * 100%.
 */
public final class WorkProgress implements StasisMetrics.InFlight, AutoCloseable {
  /** The shortest time between two writes of one work's progress. */
  public static final Duration INTERVAL = Duration.ofSeconds(2);
  private static final Logger log = LoggerFactory.getLogger(WorkProgress.class);
  /** One thread for every progress of the agent: a write every two seconds per running job is little work. */
  private static final ScheduledExecutorService REPORTER = Executors.newSingleThreadScheduledExecutor(r -> {
    Thread thread = new Thread(r, "progress-reporter");
    thread.setDaemon(true);
    return thread;
  });

  /** Writes a progress to the work's status: false once the work takes none any more (it moved on, or is gone). */
  @FunctionalInterface
  interface Writer {
    boolean write(ProgressStatus progress);
  }

  /** Told the bytes moved in a step since it was last told: the node's metrics. */
  @FunctionalInterface
  interface Moved {
    void bytes(String step, long bytes);
  }

  private final Writer writer;
  private final Moved moved;
  private final Clock clock;
  private final AtomicLong done = new AtomicLong();
  private volatile String step;
  private volatile long expected;
  /** Guards what the metrics were told ({@link #counted}), apart from the writes. */
  private final Object counting = new Object();
  private long counted;
  // The rest is the reporter's, and close()'s: guarded by this.
  private ProgressStatus written;
  private Instant writtenAt;
  private boolean stopped;
  private ScheduledFuture<?> reporting;
  private Runnable onClose = () -> {};

  WorkProgress(Writer writer, Moved moved, Clock clock) {
    this.writer = writer;
    this.moved = moved;
    this.clock = clock;
  }

  /** Reports every {@link #INTERVAL} from now on, until closed; {@code onClose} runs when it is. */
  WorkProgress start(Runnable onClose) {
    this.onClose = onClose;
    reporting = REPORTER.scheduleWithFixedDelay(this::report, INTERVAL.toMillis(), INTERVAL.toMillis(),
        TimeUnit.MILLISECONDS);
    return this;
  }

  /** The work enters {@code step}, which is expected to bring the bytes done to {@code expected} (0: unknown). */
  public void step(String step, long expected) {
    synchronized (counting) { // never behind a status write: the job does not wait for the API server
      countMoved(); // the bytes so far were the previous step's
      this.expected = expected;
      this.step = step;
    }
  }

  /** The bytes done so far, counted by the caller (they only grow). */
  public void done(long bytes) {
    done.accumulateAndGet(bytes, Math::max);
  }

  @Override
  public long bytesDone() {
    return done.get();
  }

  @Override
  public long bytesExpected() {
    return expected;
  }

  /** {@code in}, whose bytes count as done as they are read. */
  public InputStream counting(InputStream in) {
    return new FilterInputStream(in) {
      @Override
      public int read() throws IOException {
        int b = super.read();
        if (b >= 0) {
          done.incrementAndGet();
        }
        return b;
      }

      @Override
      public int read(byte[] buffer, int offset, int length) throws IOException {
        int n = super.read(buffer, offset, length);
        if (n > 0) {
          done.addAndGet(n);
        }
        return n;
      }
    };
  }

  /**
   * Writes the progress if it moved since the last write and that write is at least {@link
   * #INTERVAL} old; returns whether it wrote. The reporter calls it every interval (tests, by hand).
   */
  synchronized boolean report() {
    countMoved();
    if (stopped || step == null) {
      return false;
    }
    Instant now = clock.instant();
    if (writtenAt != null && Duration.between(writtenAt, now).compareTo(INTERVAL) < 0) {
      return false;
    }
    ProgressStatus progress = ProgressStatus.of(step, done.get(), expected, now.truncatedTo(ChronoUnit.SECONDS).toString());
    if (progress.sameAs(written)) {
      return false; // stalled: nothing to tell
    }
    try {
      if (!writer.write(progress)) {
        stopped = true;
        return false;
      }
      written = progress;
      writtenAt = now;
      return true;
    } catch (KubernetesClientException e) {
      // Only a progress: the next interval tries again with what is new by then.
      log.debug("could not write a progress: {}", e.getMessage());
      return false;
    }
  }

  private void countMoved() {
    synchronized (counting) {
      long now = done.get();
      if (now > counted && step != null) {
        moved.bytes(step, now - counted);
        counted = now;
      }
    }
  }

  /** Stops reporting; returns once a write under way has ended, so that none races the job's next write. */
  @Override
  public void close() {
    if (reporting != null) {
      reporting.cancel(false);
    }
    synchronized (this) {
      countMoved();
      stopped = true;
    }
    onClose.run();
  }
}
