package dev.stasis.storage;

import java.io.IOException;

/**
 * Where an upload is: open, committed or aborted. Its writer commits; an agent's shutdown may abort
 * it from another thread at any moment, so each move is atomic and both stores ask here before they
 * act. A second commit is a bug; an abort from elsewhere is a failure the writer reports.
 */
final class UploadState {
  private final String what;
  private boolean committed;
  private volatile boolean aborted;

  UploadState(String what) {
    this.what = what;
  }

  synchronized void requireOpen() throws IOException {
    if (committed) {
      throw new IllegalStateException(what + ": the upload was already committed");
    }
    if (aborted) {
      throw new IOException(what + ": the upload was aborted");
    }
  }

  /**
   * Runs {@code publish} only while the upload is open, atomically with {@link #abort()}: an abort
   * either sees what was published or makes this return false.
   */
  synchronized boolean whileOpen(Runnable publish) {
    if (committed || aborted) {
      return false;
    }
    publish.run();
    return true;
  }

  synchronized void committed() {
    committed = true;
  }

  /** @return whether this call aborted the upload (false: it was committed or aborted already) */
  synchronized boolean abort() {
    if (committed || aborted) {
      return false;
    }
    aborted = true;
    return true;
  }

  /** Unsynchronized, for part senders that only skip work once aborted. */
  boolean aborted() {
    return aborted;
  }
}
