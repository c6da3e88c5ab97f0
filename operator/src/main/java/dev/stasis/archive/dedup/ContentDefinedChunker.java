package dev.stasis.archive.dedup;

import java.io.IOException;
import java.io.InputStream;

/**
 * FastCDC-style content-defined chunking (Xia et al., USENIX ATC 2016): a gear hash over the last
 * 64 bytes decides where a chunk ends, so boundaries depend on nearby content only and come back
 * in step a chunk or two after bytes are inserted or removed. Chunks are between {@code min} and
 * {@code max} bytes (the last may be shorter); normalized chunking (a stricter mask before the
 * average, a looser one after) keeps most chunks near {@code average}.
 */
public final class ContentDefinedChunker implements Chunker {
  /**
   * The gear table. Boundaries, and so chunk names and deduplication against chunks already
   * stored, depend on it: it must never change. SplitMix64 from a fixed seed.
   */
  private static final long[] GEAR = new long[256];

  static {
    long state = 0x5354415349534744L; // "STASISGD"
    for (int i = 0; i < GEAR.length; i++) {
      state += 0x9E3779B97F4A7C15L;
      long z = state;
      z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
      z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
      GEAR[i] = z ^ (z >>> 31);
    }
  }

  private final int min;
  private final int average;
  private final int max;
  private final long strictMask;
  private final long looseMask;

  /** {@code average} a power of two; {@code 64 <= min < average < max}. */
  public ContentDefinedChunker(int min, int average, int max) {
    if (Integer.bitCount(average) != 1 || average < 256) {
      throw new IllegalArgumentException("the average chunk size must be a power of two of at least 256 bytes, got "
          + average);
    }
    if (min < 64 || min >= average || max <= average) {
      throw new IllegalArgumentException("chunk sizes must satisfy 64 <= min < average < max, got min " + min
          + ", average " + average + ", max " + max);
    }
    this.min = min;
    this.average = average;
    this.max = max;
    int bits = Integer.numberOfTrailingZeros(average);
    // The high bits of the gear hash depend on the most bytes (each step shifts left by one).
    this.strictMask = highBits(bits + 2);
    this.looseMask = highBits(bits - 2);
  }

  /** Chunks from a quarter of {@code average} to four times it, the spread FastCDC recommends. */
  public static ContentDefinedChunker ofAverage(int average) {
    return new ContentDefinedChunker(average / 4, average, average * 4);
  }

  private static long highBits(int count) {
    return -1L << (64 - count);
  }

  @Override
  public void cut(InputStream image, ChunkSink sink) throws IOException {
    byte[] buffer = new byte[max];
    int filled = 0;
    boolean ended = false;
    while (true) {
      while (!ended && filled < max) {
        int read = image.read(buffer, filled, max - filled);
        if (read < 0) {
          ended = true;
        } else {
          filled += read;
        }
      }
      if (filled == 0) {
        return;
      }
      int length = chunkLength(buffer, filled);
      sink.accept(buffer, 0, length);
      System.arraycopy(buffer, length, buffer, 0, filled - length);
      filled -= length;
    }
  }

  /** Where the chunk that starts at {@code buffer[0]} ends; {@code available} is all there is, or {@code max}. */
  private int chunkLength(byte[] buffer, int available) {
    if (available <= min) {
      return available;
    }
    long hash = 0;
    int i = min;
    int normal = Math.min(average, available);
    for (; i < normal; i++) {
      hash = (hash << 1) + GEAR[buffer[i] & 0xff];
      if ((hash & strictMask) == 0) {
        return i + 1;
      }
    }
    for (; i < available; i++) {
      hash = (hash << 1) + GEAR[buffer[i] & 0xff];
      if ((hash & looseMask) == 0) {
        return i + 1;
      }
    }
    return available;
  }

  @Override
  public String toString() {
    return "content-defined " + min + "/" + average + "/" + max;
  }
}
