package dev.stasis.archive;

import java.io.IOException;
import java.io.OutputStream;
import java.security.MessageDigest;

/**
 * Counts and sha256-hashes the bytes on their way to the archive's destination. Closing it flushes
 * but leaves the destination open: the destination (an upload) belongs to the caller, who still has
 * to commit it.
 */
final class HashingOutputStream extends CountingOutputStream {
  private final MessageDigest sha256 = Sha256.newDigest();

  HashingOutputStream(OutputStream destination) {
    super(destination);
  }

  @Override
  public void write(int b) throws IOException {
    sha256.update((byte) b);
    super.write(b);
  }

  @Override
  public void write(byte[] b, int off, int len) throws IOException {
    sha256.update(b, off, len);
    super.write(b, off, len);
  }

  @Override
  public void close() throws IOException {
    flush();
  }

  /** The hash of everything written so far; call once, after the last write. */
  String sha256Hex() {
    return Sha256.hex(sha256.digest());
  }
}
