package dev.stasis.metrics;

import dev.stasis.storage.ObjectUpload;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;

/** An upload whose bytes are counted; a committed one reports its throughput, an aborted one nothing. */
final class MeteredUpload implements ObjectUpload {
  private final ObjectUpload upload;
  private final Transfer transfer;
  private final long started = System.nanoTime();
  private long bytes;
  private final OutputStream stream;

  MeteredUpload(ObjectUpload upload, Transfer transfer) {
    this.upload = upload;
    this.transfer = transfer;
    this.stream = new FilterOutputStream(upload.stream()) {
      @Override
      public void write(int b) throws IOException {
        out.write(b);
        bytes++;
      }

      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        out.write(b, off, len);
        bytes += len;
      }
    };
  }

  @Override
  public OutputStream stream() {
    return stream;
  }

  @Override
  public long commit() throws IOException {
    long stored = upload.commit();
    transfer.finished(bytes, System.nanoTime() - started);
    return stored;
  }

  @Override
  public void abort() {
    upload.abort();
  }

  @Override
  public void close() {
    upload.close();
  }
}
