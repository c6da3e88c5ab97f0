package dev.stasis.storage;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;

/**
 * One stored object read as consecutive byte ranges, several of them fetched at once and handed
 * out in order, so that one connection's throughput does not bound a restore. The first range
 * streams straight from the response that opened the object; each later one is fetched whole into
 * a buffer, at most {@code parallel} ahead of the reader, so an object of any size takes at most
 * {@code parallel + 1} buffers.
 *
 * <p>Every range must come back exactly as long as asked, and the {@link RangeFetcher} asks for the
 * version the first response named (S3: {@code If-Match} on its ETag): an object replaced,
 * truncated or grown while it is read fails the stream instead of mixing versions.
 */
final class ParallelRangedStream extends InputStream {
  /** Fetches bytes {@code [start, start + length)} of the object, of the version the stream began with. */
  @FunctionalInterface
  interface RangeFetcher {
    InputStream fetch(long start, long length) throws IOException;
  }

  private final String name;
  private final long size;
  private final int rangeSize;
  private final RangeFetcher fetcher;
  private final ExecutorService fetches;
  /** Ranges asked for, in object order; their buffers come back filled. */
  private final Deque<Future<byte[]>> pending = new ArrayDeque<>();
  private final Deque<byte[]> free = new ArrayDeque<>();

  /** The first range's response until it is used up, then null. */
  private InputStream first;
  private byte[] buffer;
  private int bufferLength;
  private int bufferPosition;
  /** Bytes of the object handed out so far. */
  private long position;
  /** Where the next range to ask for begins. */
  private long nextFetch;
  private IOException failure;
  private volatile boolean closed;

  /**
   * @param name the object, for messages
   * @param first the response holding bytes {@code [0, rangeSize)}, or all of a smaller object
   * @param size the object's length, as the first response said
   */
  ParallelRangedStream(String name, InputStream first, long size, int rangeSize, int parallel, RangeFetcher fetcher,
      ExecutorService fetches) {
    this.name = name;
    this.first = first;
    this.size = size;
    this.rangeSize = rangeSize;
    this.fetcher = fetcher;
    this.fetches = fetches;
    this.nextFetch = Math.min(rangeSize, size);
    while (pending.size() < parallel && nextFetch < size) {
      fetchNext();
    }
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (closed) {
      throw new IOException("reading " + name + ": the stream is closed");
    }
    if (failure != null) {
      throw failure;
    }
    if (len == 0) {
      return 0;
    }
    try {
      if (first != null) {
        return readFirst(b, off, len);
      }
      if (bufferPosition == bufferLength && !nextBuffer()) {
        return -1;
      }
      int n = Math.min(len, bufferLength - bufferPosition);
      System.arraycopy(buffer, bufferPosition, b, off, n);
      bufferPosition += n;
      position += n;
      return n;
    } catch (IOException e) {
      failure = e;
      throw e;
    }
  }

  private int readFirst(byte[] b, int off, int len) throws IOException {
    long firstEnd = Math.min(rangeSize, size);
    int n = first.read(b, off, (int) Math.min(len, firstEnd - position));
    if (n < 0) {
      throw new EOFException(name + " ended after " + position + " of the " + firstEnd
          + " bytes asked for: the object was truncated or replaced while it was read");
    }
    position += n;
    if (position == firstEnd) {
      if (first.read() >= 0) {
        throw new IOException(name + " sent more than the " + firstEnd + " bytes asked for");
      }
      first.close();
      first = null;
    }
    return n;
  }

  /** Moves on to the next range's buffer, waiting for it; false at the end of the object. */
  private boolean nextBuffer() throws IOException {
    if (buffer != null) {
      free.push(buffer);
      buffer = null;
    }
    Future<byte[]> next = pending.poll();
    if (next == null) {
      return false;
    }
    if (nextFetch < size) {
      fetchNext(); // keeps `parallel` ranges coming while this one is read
    }
    try {
      buffer = next.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while reading " + name);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof IOException io ? io : new IOException("reading " + name + " failed", e.getCause());
    } catch (CancellationException e) {
      throw new IOException("reading " + name + ": the stream is closed");
    }
    bufferLength = (int) Math.min(rangeSize, size - position);
    bufferPosition = 0;
    return true;
  }

  private void fetchNext() {
    long start = nextFetch;
    int length = (int) Math.min(rangeSize, size - start);
    byte[] into = free.isEmpty() ? new byte[rangeSize] : free.pop();
    nextFetch += length;
    pending.add(fetches.submit(() -> fill(into, start, length)));
  }

  private byte[] fill(byte[] into, long start, int length) throws IOException {
    try (InputStream in = fetcher.fetch(start, length)) {
      int filled = 0;
      while (filled < length) {
        if (closed) {
          throw new IOException("reading " + name + ": the stream is closed");
        }
        int n = in.read(into, filled, length - filled);
        if (n < 0) {
          throw new EOFException(name + " ended after " + (start + filled) + " bytes, " + (start + length)
              + " were asked for: the object was truncated or replaced while it was read");
        }
        filled += n;
      }
      if (in.read() >= 0) {
        throw new IOException(name + " sent more than the " + length + " bytes asked for at " + start);
      }
      return into;
    }
  }

  /** Ranges still in flight are cancelled; their threads stop at their next read. */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    for (Future<byte[]> fetch : pending) {
      fetch.cancel(true);
    }
    pending.clear();
    if (first != null) {
      first.close();
    }
  }
}
