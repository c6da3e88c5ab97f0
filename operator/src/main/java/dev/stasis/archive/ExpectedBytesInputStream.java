package dev.stasis.archive;

import java.io.IOException;
import java.io.InputStream;

/**
 * Passes on a stored object's bytes, and reports their end only if they were exactly the expected
 * count with the expected sha256 (as recorded when the object was stored); otherwise it fails with
 * an {@link ArchiveIntegrityException} instead. It never reads more than one byte past the expected
 * count, however long the object is. Closing it leaves the source open.
 */
public final class ExpectedBytesInputStream extends InputStream {
  private final HashingInputStream stored;
  private final String expectedSha256;
  private final long expectedBytes;

  public ExpectedBytesInputStream(InputStream source, String expectedSha256, long expectedBytes) {
    // One byte beyond the expected count is enough to tell the object is too long.
    this.stored = new HashingInputStream(source, expectedBytes + 1);
    this.expectedSha256 = expectedSha256;
    this.expectedBytes = expectedBytes;
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (len == 0) {
      return 0;
    }
    int n = stored.read(b, off, len);
    if (n < 0) {
      verifyEnd();
    } else if (stored.count() > expectedBytes) {
      throw new ArchiveIntegrityException("the stored archive is longer than the " + expectedBytes
          + " bytes recorded when it was stored: it is not the archive that was written");
    }
    return n;
  }

  private void verifyEnd() throws ArchiveIntegrityException {
    if (stored.count() != expectedBytes) {
      throw new ArchiveIntegrityException("the stored archive is " + stored.count() + " bytes, " + expectedBytes
          + " were recorded when it was stored: it is truncated or not the archive that was written");
    }
    if (!stored.sha256Hex().equalsIgnoreCase(expectedSha256)) {
      throw new ArchiveIntegrityException("the stored archive's sha256 is " + stored.sha256Hex() + ", " + expectedSha256
          + " was recorded when it was stored: it was damaged or replaced");
    }
  }
}
