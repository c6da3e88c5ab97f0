package dev.stasis.metrics;

import dev.stasis.archive.CountingOutputStream;
import dev.stasis.storage.ObjectUpload;
import java.io.IOException;
import java.io.OutputStream;

/** An upload whose bytes are counted; a committed one reports its throughput, an aborted one nothing. */
final class MeteredUpload implements ObjectUpload {
  private final ObjectUpload upload;
  private final Transfer transfer;
  private final long started = System.nanoTime();
  private final CountingOutputStream stream;

  MeteredUpload(ObjectUpload upload, Transfer transfer) {
    this.upload = upload;
    this.transfer = transfer;
    this.stream = new CountingOutputStream(upload.stream());
  }

  @Override
  public OutputStream stream() {
    return stream;
  }

  @Override
  public long commit() throws IOException {
    long stored = upload.commit();
    transfer.finished(stream.count(), System.nanoTime() - started);
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
