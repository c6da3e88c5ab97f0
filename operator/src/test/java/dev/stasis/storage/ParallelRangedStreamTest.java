package dev.stasis.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The stream's own rules, with ranges served from memory: what a server that ignores If-Match or
 * answers short would do (S3ObjectStoreTest covers the real S3 server).
 */
class ParallelRangedStreamTest {
  private static final int RANGE = 1000;

  private final ExecutorService fetches = Executors.newFixedThreadPool(3);

  @AfterEach
  void stop() throws InterruptedException {
    fetches.shutdownNow();
    fetches.awaitTermination(10, TimeUnit.SECONDS);
  }

  @Test
  void handsOutRangesInObjectOrderWhateverOrderTheyArriveIn() throws IOException {
    byte[] object = randomBytes(10 * RANGE + 7);
    Random delays = new Random(1);
    List<Long> asked = new CopyOnWriteArrayList<>();
    try (InputStream in = stream(object, (start, length) -> {
      asked.add(start);
      sleep(delays.nextInt(20));
      return slice(object, start, length);
    })) {
      assertThat(in.readAllBytes()).isEqualTo(object);
    }
    assertThat(asked).containsExactlyInAnyOrder(1000L, 2000L, 3000L, 4000L, 5000L, 6000L, 7000L, 8000L, 9000L,
        10000L);
  }

  @Test
  void aRangeShorterThanAskedFailsTheStream() throws IOException {
    byte[] object = randomBytes(5 * RANGE);
    try (InputStream in = stream(object, (start, length) ->
        slice(object, start, start == 3 * RANGE ? length - 1 : length))) {
      assertThat(in.readNBytes(3 * RANGE)).isEqualTo(Arrays.copyOf(object, 3 * RANGE));
      assertThatThrownBy(in::readAllBytes).isInstanceOf(EOFException.class)
          .hasMessage("s3://b/k ended after 3999 bytes, 4000 were asked for: the object was truncated or replaced"
              + " while it was read");
      assertThatThrownBy(in::read).isInstanceOf(EOFException.class);
    }
  }

  @Test
  void aRangeLongerThanAskedFailsTheStream() throws IOException {
    byte[] object = randomBytes(5 * RANGE);
    try (InputStream in = stream(object, (start, length) -> slice(object, start, length + 1))) {
      assertThatThrownBy(in::readAllBytes).isInstanceOf(IOException.class)
          .hasMessage("s3://b/k sent more than the 1000 bytes asked for at 1000");
    }
  }

  @Test
  void aFirstResponseShorterThanItsRangeFailsTheStream() throws IOException {
    byte[] object = randomBytes(5 * RANGE);
    try (InputStream in = new ParallelRangedStream("s3://b/k", slice(object, 0, RANGE - 10), object.length, RANGE, 3,
        (start, length) -> slice(object, start, length), fetches)) {
      assertThatThrownBy(in::readAllBytes).isInstanceOf(EOFException.class)
          .hasMessageStartingWith("s3://b/k ended after 990 of the 1000 bytes asked for");
    }
  }

  @Test
  void aFailedFetchFailsTheStreamWithItsError() throws IOException {
    byte[] object = randomBytes(5 * RANGE);
    try (InputStream in = stream(object, (start, length) -> {
      if (start == 2 * RANGE) {
        throw new IOException("reading bytes 2000-2999/5000 of s3://b/k failed: S3 answered 500");
      }
      return slice(object, start, length);
    })) {
      assertThatThrownBy(in::readAllBytes).isInstanceOf(IOException.class)
          .hasMessage("reading bytes 2000-2999/5000 of s3://b/k failed: S3 answered 500");
    }
  }

  private InputStream stream(byte[] object, ParallelRangedStream.RangeFetcher fetcher) {
    return new ParallelRangedStream("s3://b/k", slice(object, 0, RANGE), object.length, RANGE, 3, fetcher, fetches);
  }

  private static InputStream slice(byte[] object, long start, long length) {
    return new ByteArrayInputStream(object, (int) start, (int) Math.min(length, object.length - start));
  }

  private static void sleep(int millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static byte[] randomBytes(int size) {
    byte[] bytes = new byte[size];
    new Random(size).nextBytes(bytes);
    return bytes;
  }
}
