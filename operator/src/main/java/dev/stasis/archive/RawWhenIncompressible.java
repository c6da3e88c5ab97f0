package dev.stasis.archive;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdOutputStreamNoFinalizer;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;

/**
 * A zstd stream that spends no compression effort on bytes that do not compress. Each large write
 * (the archive's 1 MiB batches) is judged by compressing a few small samples of it at zstd's fastest
 * level: if they barely shrink (random or already compressed memory, float data), the write is
 * stored in zstd frames of raw blocks, a plain copy; otherwise it goes to the compressor.
 *
 * <p>The output stays one standard zstd stream, frames one after another, which every zstd
 * decoder (older Stasis agents, {@code zstd -d}) reads as the concatenation of their contents: no
 * new archive format. Compressed frames keep their checksum; raw frames carry none, since the
 * archive's sha256, checked on every restore, covers every byte anyway.
 */
final class RawWhenIncompressible extends FilterOutputStream {
  /** Writes shorter than this keep the current way (tar headers, the archive's end). */
  static final int JUDGED_WRITE = 64 << 10;
  private static final int SAMPLES = 4;
  private static final int SAMPLE_BYTES = 4 << 10;
  private static final int SAMPLE_LEVEL = 1;
  // Stored raw unless the samples shrink by more than 1/16: below that, zstd's effort buys little.
  private static final int WORTH_NUMERATOR = 15;
  private static final int WORTH_DENOMINATOR = 16;
  /** The largest raw block zstd allows. */
  private static final int RAW_BLOCK = 128 << 10;
  private static final int FRAME_MAGIC = 0xFD2FB528;
  // Frame header descriptor: single segment (the window is the frame), content size in 4 bytes.
  private static final int SINGLE_SEGMENT_4_BYTE_SIZE = 0xA0;
  private static final int RAW_FRAME_MAX = 1 << 20;

  private final ZstdOutputStreamNoFinalizer compressor;
  private final ZstdCompressCtx sampler = new ZstdCompressCtx();
  private final byte[] sampleOut = new byte[(int) Zstd.compressBound(SAMPLE_BYTES)];
  private final byte[] header = new byte[12];
  private boolean raw;
  private boolean compressedFrameOpen;

  /** Compresses into {@code out} at {@code level} on {@code workers} zstd threads (0: this one). */
  RawWhenIncompressible(OutputStream out, int level, int workers) throws IOException {
    super(out);
    this.compressor = new ZstdOutputStreamNoFinalizer(new Unclosed(out), level);
    // The frame checksum lets the reader tell a bad decompression from a bad download.
    compressor.setChecksum(true);
    compressor.setWorkers(workers);
    // Its flush is only called to end a frame before raw ones; see flush() below.
    compressor.setCloseFrameOnFlush(true);
    sampler.setLevel(SAMPLE_LEVEL);
  }

  @Override
  public void write(int b) throws IOException {
    write(new byte[] {(byte) b}, 0, 1);
  }

  @Override
  public void write(byte[] bytes, int offset, int length) throws IOException {
    while (length > 0) {
      int n = Math.min(length, RAW_FRAME_MAX);
      if (n >= JUDGED_WRITE) {
        useRaw(incompressible(bytes, offset, n));
      }
      if (raw) {
        writeRawFrame(bytes, offset, n);
      } else {
        compressor.write(bytes, offset, n);
        compressedFrameOpen = true;
      }
      offset += n;
      length -= n;
    }
  }

  /**
   * Flushes what has been written out as far as frames are complete; bytes still in the compressor
   * follow when its frame ends (before raw bytes, or on close). Flushing it here would end a frame
   * at every flush of the layers above.
   */
  @Override
  public void flush() throws IOException {
    out.flush();
  }

  /** Ends the last compressed frame, if one is open, and closes {@code out}. */
  @Override
  public void close() throws IOException {
    try {
      compressor.close();
      out.close();
    } finally {
      sampler.close();
    }
  }

  private void useRaw(boolean incompressible) throws IOException {
    if (incompressible && !raw && compressedFrameOpen) {
      // End the compressed frame, so that the raw frames follow a whole one.
      compressor.flush();
      compressedFrameOpen = false;
    }
    raw = incompressible;
  }

  private boolean incompressible(byte[] bytes, int offset, int length) {
    int step = (length - SAMPLE_BYTES) / (SAMPLES - 1);
    long in = 0;
    long out = 0;
    for (int i = 0; i < SAMPLES; i++) {
      out += sampler.compressByteArray(sampleOut, 0, sampleOut.length, bytes, offset + i * step, SAMPLE_BYTES);
      in += SAMPLE_BYTES;
    }
    return out * WORTH_DENOMINATOR > in * WORTH_NUMERATOR;
  }

  /** One zstd frame of raw blocks holding {@code bytes} as they are. */
  private void writeRawFrame(byte[] bytes, int offset, int length) throws IOException {
    putLittleEndian(FRAME_MAGIC, 0, 4);
    header[4] = (byte) SINGLE_SEGMENT_4_BYTE_SIZE;
    putLittleEndian(length, 5, 4);
    out.write(header, 0, 9);
    int end = offset + length;
    while (offset < end) {
      int n = Math.min(RAW_BLOCK, end - offset);
      boolean last = offset + n == end;
      // Block header: bit 0 last block, bits 1-2 type (0: raw), bits 3-23 size.
      putLittleEndian(n << 3 | (last ? 1 : 0), 0, 3);
      out.write(header, 0, 3);
      out.write(bytes, offset, n);
      offset += n;
    }
  }

  private void putLittleEndian(int value, int at, int bytes) {
    for (int i = 0; i < bytes; i++) {
      header[at + i] = (byte) (value >>> (8 * i));
    }
  }

  /** The compressor's view of {@code out}: ending the compressed stream must not close it under the raw frames. */
  private static final class Unclosed extends FilterOutputStream {
    Unclosed(OutputStream out) {
      super(out);
    }

    @Override
    public void write(byte[] bytes, int offset, int length) throws IOException {
      out.write(bytes, offset, length);
    }

    @Override
    public void close() throws IOException {
      out.flush();
    }
  }
}
