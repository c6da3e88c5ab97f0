package dev.stasis.archive;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;

/**
 * Counts and sha256-hashes the stored bytes as they are read, and remembers whether reading them
 * failed, which tells a storage failure apart from an archive that does not decode. It ends after
 * {@code limit} bytes, however long the source is. Closing it leaves the source open: the source
 * belongs to the caller.
 */
final class HashingInputStream extends FilterInputStream {
  private final MessageDigest sha256 = Sha256.newDigest();
  private final long limit;
  private long count;
  private boolean sourceFailed;
  private String sha256Hex;

  HashingInputStream(InputStream source) {
    this(source, Long.MAX_VALUE);
  }

  HashingInputStream(InputStream source, long limit) {
    super(source);
    this.limit = limit;
  }

  @Override
  public int read() throws IOException {
    int b = count >= limit ? -1 : readSource(() -> in.read());
    if (b >= 0) {
      sha256.update((byte) b);
      count++;
    }
    return b;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (count >= limit) {
      return -1;
    }
    int n = readSource(() -> in.read(b, off, (int) Math.min(len, limit - count)));
    if (n > 0) {
      sha256.update(b, off, n);
      count += n;
    }
    return n;
  }

  // Skipped bytes still have to be hashed.
  @Override
  public long skip(long n) throws IOException {
    byte[] buffer = new byte[(int) Math.min(n, 64 * 1024)];
    long skipped = 0;
    while (skipped < n) {
      int read = read(buffer, 0, (int) Math.min(buffer.length, n - skipped));
      if (read < 0) {
        break;
      }
      skipped += read;
    }
    return skipped;
  }

  @Override
  public boolean markSupported() {
    return false;
  }

  @Override
  public void close() {}

  /** Reads the source to its end (or the limit), so that the hash and count cover every stored byte. */
  void drain() throws IOException {
    byte[] buffer = new byte[1 << 20];
    while (read(buffer, 0, buffer.length) >= 0) {
      // the bytes only need to be hashed and counted
    }
  }

  long count() {
    return count;
  }

  boolean sourceFailed() {
    return sourceFailed;
  }

  /** The hash of every byte read; complete once the source is drained. */
  String sha256Hex() {
    if (sha256Hex == null) {
      sha256Hex = Sha256.hex(sha256.digest());
    }
    return sha256Hex;
  }

  private int readSource(SourceRead read) throws IOException {
    try {
      return read.run();
    } catch (IOException | RuntimeException e) {
      sourceFailed = true;
      throw e;
    }
  }

  @FunctionalInterface
  private interface SourceRead {
    int run() throws IOException;
  }
}
