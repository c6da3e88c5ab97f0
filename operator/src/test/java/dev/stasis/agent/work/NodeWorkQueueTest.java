package dev.stasis.agent.work;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class NodeWorkQueueTest {
  /** Places are only told when the test says so: no timing in the assertions about coalescing. */
  private static final Duration NEVER_BY_ITSELF = Duration.ofHours(1);

  private final List<NodeWorkQueue> queues = new ArrayList<>();
  private final List<String> started = new CopyOnWriteArrayList<>();
  private final Map<String, List<Integer>> placesTold = new ConcurrentHashMap<>();
  private final Map<String, CountDownLatch> gates = new ConcurrentHashMap<>();

  @AfterEach
  void close() {
    gates.values().forEach(CountDownLatch::countDown);
    queues.forEach(NodeWorkQueue::close);
  }

  private NodeWorkQueue queue(int slots, Duration publishInterval) {
    NodeWorkQueue queue = new NodeWorkQueue("node-a", slots, publishInterval);
    queues.add(queue);
    return queue;
  }

  /** A job that runs until the test opens its gate, and records each place it is told. */
  private NodeWorkQueue.Job job(String id) {
    CountDownLatch gate = gates.computeIfAbsent(id, k -> new CountDownLatch(1));
    return new NodeWorkQueue.Job() {
      @Override
      public void run() {
        started.add(id);
        try {
          gate.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }

      @Override
      public void waiting(int position, int running) {
        placesTold.computeIfAbsent(id, k -> new CopyOnWriteArrayList<>()).add(position);
      }
    };
  }

  private void finish(String id) {
    gates.get(id).countDown();
  }

  @Test
  void runsAtMostItsSlotsAndTheRestInArrivalOrder() {
    NodeWorkQueue queue = queue(2, NEVER_BY_ITSELF);
    for (String id : List.of("a", "b", "c", "d", "e")) {
      assertThat(queue.submit(id, job(id))).isTrue();
    }
    await().atMost(Duration.ofSeconds(5)).until(() -> started.size() == 2);
    assertThat(started).as("the first two, each in its own slot").containsExactlyInAnyOrder("a", "b");
    assertThat(queue.running()).isEqualTo(2);
    assertThat(queue.waiting()).isEqualTo(3);

    finish("b");
    await().atMost(Duration.ofSeconds(5)).until(() -> started.size() == 3);
    finish("a");
    await().atMost(Duration.ofSeconds(5)).until(() -> started.size() == 4);
    finish("c");
    finish("d");
    finish("e");
    await().atMost(Duration.ofSeconds(5)).until(() -> started.size() == 5 && queue.running() == 0);
    assertThat(started.subList(2, 5)).as("the rest as slots came free, in arrival order").containsExactly("c", "d", "e");
    assertThat(queue.mostRunning()).isEqualTo(2);
  }

  @Test
  void workAlreadyWaitingOrRunningIsNotQueuedTwice() {
    NodeWorkQueue queue = queue(1, NEVER_BY_ITSELF);
    assertThat(queue.submit("a", job("a"))).isTrue();
    assertThat(queue.submit("b", job("b"))).isTrue();
    await().atMost(Duration.ofSeconds(5)).until(() -> started.contains("a"));
    assertThat(queue.submit("a", job("a"))).as("running").isFalse();
    assertThat(queue.submit("b", job("b"))).as("waiting").isFalse();
    assertThat(queue.holds("a")).isTrue();
    assertThat(queue.holds("b")).isTrue();
    finish("a");
    finish("b");
    await().atMost(Duration.ofSeconds(5)).until(() -> !queue.holds("a") && !queue.holds("b"));
    assertThat(started).containsExactly("a", "b");
  }

  @Test
  void eachWaitingJobIsToldItsPlaceOnlyWhenItChanged() {
    NodeWorkQueue queue = queue(1, NEVER_BY_ITSELF);
    for (String id : List.of("a", "b", "c", "d")) {
      queue.submit(id, job(id));
    }
    await().atMost(Duration.ofSeconds(5)).until(() -> started.contains("a"));
    queue.publishPositions();
    assertThat(placesTold).containsOnlyKeys("b", "c", "d");
    assertThat(placesTold.get("b")).containsExactly(1);
    assertThat(placesTold.get("d")).containsExactly(3);

    queue.publishPositions();
    assertThat(placesTold.get("d")).as("unchanged: not told again").containsExactly(3);

    // Two moves of the line between two publications reach d as one change: 3 -> 1.
    finish("a");
    await().atMost(Duration.ofSeconds(5)).until(() -> started.contains("b"));
    finish("b");
    await().atMost(Duration.ofSeconds(5)).until(() -> started.contains("c"));
    queue.publishPositions();
    assertThat(placesTold.get("d")).containsExactly(3, 1);
    assertThat(placesTold.get("b")).as("running jobs hear nothing").containsExactly(1);
    assertThat(placesTold.get("c")).containsExactly(2);
  }

  @Test
  void placesArePublishedByItselfAfterTheInterval() {
    NodeWorkQueue queue = queue(1, Duration.ofMillis(100));
    queue.submit("a", job("a"));
    queue.submit("b", job("b"));
    queue.submit("c", job("c"));
    await().atMost(Duration.ofSeconds(5)).until(() -> placesTold.containsKey("c"));
    assertThat(placesTold.get("b")).containsExactly(1);
    assertThat(placesTold.get("c")).containsExactly(2);
    finish("a");
    await().atMost(Duration.ofSeconds(5)).until(() -> placesTold.get("c").size() == 2);
    assertThat(placesTold.get("c")).containsExactly(2, 1);
  }

  @Test
  void workThatCouldNotStartIsQueuedAgainLater() {
    NodeWorkQueue queue = queue(1, NEVER_BY_ITSELF);
    queue.submitLater("a", job("a"), Duration.ofMillis(100));
    assertThat(queue.holds("a")).as("not yet").isFalse();
    await().atMost(Duration.ofSeconds(5)).until(() -> started.contains("a"));
  }

  @Test
  void stoppingStartsNothingMoreAndWaitsForRunningWork() throws Exception {
    NodeWorkQueue queue = queue(1, NEVER_BY_ITSELF);
    queue.submit("a", job("a"));
    queue.submit("b", job("b"));
    await().atMost(Duration.ofSeconds(5)).until(() -> started.contains("a"));
    assertThat(queue.stopAndAwaitRunning(Duration.ofMillis(200))).as("a still runs").isFalse();
    AtomicInteger stopped = new AtomicInteger();
    Thread stopper = new Thread(() -> stopped.set(queue.stopAndAwaitRunning(Duration.ofSeconds(5)) ? 1 : -1));
    stopper.start();
    finish("a");
    stopper.join(5000);
    assertThat(stopped.get()).isEqualTo(1);
    assertThat(started).as("b was never started").containsExactly("a");
    assertThat(queue.submit("c", job("c"))).isFalse();
  }

  @Test
  void farBackInLineAJobHearsOnlyWhenItsPlaceHalved() {
    assertThat(NodeWorkQueue.worthTelling(null, 1000)).as("its first place").isTrue();
    assertThat(NodeWorkQueue.worthTelling(1000, 999)).isFalse();
    assertThat(NodeWorkQueue.worthTelling(1000, 501)).isFalse();
    assertThat(NodeWorkQueue.worthTelling(1000, 500)).isTrue();
    assertThat(NodeWorkQueue.worthTelling(5, 4)).isFalse();
    assertThat(NodeWorkQueue.worthTelling(4, 3)).as("near the front, every move").isTrue();
    assertThat(NodeWorkQueue.worthTelling(2, 2)).as("unchanged").isFalse();
    int told = 0;
    Integer last = null;
    for (int place = 1000; place >= 1; place--) {
      if (NodeWorkQueue.worthTelling(last, place)) {
        told++;
        last = place;
      }
    }
    assertThat(told).as("places told on the way from 1000th to the front").isLessThanOrEqualTo(12);
  }
}
