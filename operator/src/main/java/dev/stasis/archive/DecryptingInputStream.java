package dev.stasis.archive;

import java.io.IOException;
import java.io.InputStream;
import java.security.GeneralSecurityException;
import javax.crypto.AEADBadTagException;

/**
 * Reads what {@link EncryptingOutputStream} wrote and hands on only bytes whose segment has
 * authenticated. A stream that was altered, cut short (even at a segment boundary), reordered,
 * encrypted with another key or for another archive ends in an {@link ArchiveAuthenticationException}; the end of the
 * plaintext is reported only after the last segment authenticated as the last one.
 *
 * <p>Closing it leaves the source open: the source belongs to the caller.
 */
public final class DecryptingInputStream extends InputStream {
  private final InputStream source;
  private final BoundKey key;
  private SegmentCipher cipher;
  private byte[] sealed;
  private byte[] plain;
  private int plainLength;
  private int plainPosition;
  private long index;
  private boolean lastDone;
  /** The byte read to learn that a full segment is not the last one; -1 when there is none. */
  private int lookahead = -1;

  public DecryptingInputStream(InputStream source, BoundKey key) {
    this.source = source;
    this.key = key;
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    int n = read(one, 0, 1);
    return n < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (len == 0) {
      return 0;
    }
    while (plainPosition == plainLength) {
      if (lastDone) {
        return -1;
      }
      openSegment();
    }
    int n = Math.min(len, plainLength - plainPosition);
    System.arraycopy(plain, plainPosition, b, off, n);
    plainPosition += n;
    return n;
  }

  @Override
  public int available() {
    return plainLength - plainPosition;
  }

  @Override
  public void close() {}

  private void openSegment() throws IOException {
    if (cipher == null) {
      readHeader();
    }
    int length = 0;
    if (lookahead >= 0) {
      sealed[length++] = (byte) lookahead;
      lookahead = -1;
    }
    length += source.readNBytes(sealed, length, sealed.length - length);
    boolean last = length < sealed.length;
    if (!last) {
      lookahead = source.read();
      last = lookahead < 0;
    }
    if (length < SegmentCipher.TAG_BYTES) {
      throw new ArchiveAuthenticationException("the encrypted archive ends inside segment " + index
          + " (" + length + " bytes, shorter than its tag): it is truncated");
    }
    if (index >= SegmentCipher.MAX_SEGMENTS) {
      throw new ArchiveAuthenticationException("the encrypted archive has more segments than its format allows");
    }
    try {
      plainLength = cipher.decrypt(index, last, sealed, length, plain);
    } catch (AEADBadTagException e) {
      throw new ArchiveAuthenticationException("segment " + index + " of the encrypted archive does not authenticate"
          + " with key '" + key.keyId() + "' for " + key.identity() + (last ? " as its last segment" : "")
          + ": the archive was altered, truncated or reordered, belongs to another checkpoint, or the key's bytes are not"
          + " the ones it was written with",
          e);
    } catch (GeneralSecurityException e) {
      throw new ArchiveAuthenticationException("segment " + index + " of the encrypted archive cannot be decrypted: "
          + e.getMessage(), e);
    }
    plainPosition = 0;
    index++;
    lastDone = last;
  }

  private void readHeader() throws IOException {
    byte[] header = source.readNBytes(SegmentCipher.HEADER_BYTES);
    if (header.length < SegmentCipher.HEADER_BYTES) {
      throw new ArchiveAuthenticationException("the encrypted archive ends inside its " + SegmentCipher.HEADER_BYTES
          + "-byte header (" + header.length + " bytes): it is truncated");
    }
    int segmentBytes = SegmentCipher.segmentBytes(header);
    cipher = new SegmentCipher(key, header);
    sealed = new byte[segmentBytes + SegmentCipher.TAG_BYTES];
    plain = new byte[segmentBytes];
  }
}
