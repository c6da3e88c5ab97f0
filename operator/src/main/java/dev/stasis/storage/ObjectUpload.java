package dev.stasis.storage;

import java.io.IOException;
import java.io.OutputStream;

/**
 * One object being uploaded. Bytes written to {@link #stream()} are sent as they come (S3 multipart
 * parts, or a temporary file); the object exists under its key only after {@link #commit()}. Closing
 * an upload that was not committed aborts it and leaves nothing behind.
 */
public interface ObjectUpload extends AutoCloseable {
  OutputStream stream();

  /** Finishes the upload and makes the object visible. @return bytes stored. */
  long commit() throws IOException;

  /** Discards everything uploaded so far; safe to call more than once. */
  void abort();

  @Override
  default void close() {
    abort();
  }
}
