package dev.stasis.metrics;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;

/** A download whose bytes are counted; read to its end, it reports its throughput once. */
final class MeteredInputStream extends FilterInputStream {
  private final Transfer transfer;
  private final long started = System.nanoTime();
  private long bytes;
  private boolean reported;

  MeteredInputStream(InputStream in, Transfer transfer) {
    super(in);
    this.transfer = transfer;
  }

  @Override
  public int read() throws IOException {
    int b = super.read();
    count(b < 0 ? -1 : 1);
    return b;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    int n = super.read(b, off, len);
    count(n);
    return n;
  }

  private void count(int n) {
    if (n > 0) {
      bytes += n;
    } else if (n < 0 && !reported) {
      reported = true;
      transfer.finished(bytes, System.nanoTime() - started);
    }
  }
}
