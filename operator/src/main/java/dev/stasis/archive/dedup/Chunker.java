package dev.stasis.archive.dedup;

import java.io.IOException;
import java.io.InputStream;

/**
 * Cuts a memory image into chunks while it streams: every byte of the image lands in exactly one
 * chunk, in order, and at most one chunk is held in memory.
 */
public interface Chunker {
  /** Reads {@code image} to its end and hands each chunk to {@code sink} as soon as it is cut. */
  void cut(InputStream image, ChunkSink sink) throws IOException;

  /** Receives chunks; the bytes are only valid during the call (the chunker reuses its buffer). */
  @FunctionalInterface
  interface ChunkSink {
    void accept(byte[] bytes, int offset, int length) throws IOException;
  }
}
