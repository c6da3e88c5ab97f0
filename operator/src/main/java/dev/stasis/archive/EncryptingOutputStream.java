package dev.stasis.archive;

import java.io.IOException;
import java.io.OutputStream;
import java.security.SecureRandom;

/**
 * Encrypts what is written to it in {@link SegmentCipher} segments, in one pass and with one
 * segment of memory. {@link #close()} writes the last segment and closes the destination; a stream
 * that is never closed is incomplete, and a reader notices.
 */
public final class EncryptingOutputStream extends OutputStream {
  private static final SecureRandom RANDOM = new SecureRandom();

  private final OutputStream destination;
  private final SegmentCipher cipher;
  private final byte[] segment;
  private final byte[] sealed;
  private int buffered;
  private long index;
  private boolean closed;

  public EncryptingOutputStream(OutputStream destination, BoundKey key) throws IOException {
    this(destination, key, SegmentCipher.DEFAULT_SEGMENT_BYTES);
  }

  EncryptingOutputStream(OutputStream destination, BoundKey key, int segmentBytes) throws IOException {
    if (segmentBytes < 1 || segmentBytes > SegmentCipher.MAX_SEGMENT_BYTES) {
      throw new IllegalArgumentException("segmentBytes must be 1 to " + SegmentCipher.MAX_SEGMENT_BYTES);
    }
    this.destination = destination;
    byte[] salt = new byte[SegmentCipher.SALT_BYTES];
    byte[] noncePrefix = new byte[SegmentCipher.NONCE_PREFIX_BYTES];
    RANDOM.nextBytes(salt);
    RANDOM.nextBytes(noncePrefix);
    byte[] header = SegmentCipher.header(segmentBytes, salt, noncePrefix);
    this.cipher = new SegmentCipher(key, header);
    this.segment = new byte[segmentBytes];
    this.sealed = new byte[segmentBytes + SegmentCipher.TAG_BYTES];
    destination.write(header);
  }

  @Override
  public void write(int b) throws IOException {
    write(new byte[] {(byte) b}, 0, 1);
  }

  @Override
  public void write(byte[] b, int off, int len) throws IOException {
    requireOpen();
    while (len > 0) {
      // A full segment is sealed only once more bytes come: until close() it might be the last.
      if (buffered == segment.length) {
        seal(false);
      }
      int n = Math.min(len, segment.length - buffered);
      System.arraycopy(b, off, segment, buffered, n);
      buffered += n;
      off += n;
      len -= n;
    }
  }

  /** Passes on the sealed segments; the open one can only be written once it is full or last. */
  @Override
  public void flush() throws IOException {
    destination.flush();
  }

  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    seal(true);
    closed = true;
    destination.close();
  }

  private void seal(boolean last) throws IOException {
    if (index >= SegmentCipher.MAX_SEGMENTS) {
      throw new IOException("the archive is too large to encrypt: more than " + SegmentCipher.MAX_SEGMENTS + " segments");
    }
    int n = cipher.encrypt(index, last, segment, buffered, sealed);
    destination.write(sealed, 0, n);
    index++;
    buffered = 0;
  }

  private void requireOpen() throws IOException {
    if (closed) {
      throw new IOException("the encrypting stream is closed");
    }
  }
}
