package dev.stasis.archive.dedup;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;

/**
 * Cuts a CRIU pages image where its pagemap says dumped memory starts and ends, and at every
 * virtual address that is a multiple of the block size. Boundaries follow addresses, not offsets
 * in the image: memory mapped or unmapped elsewhere moves no other chunk's boundaries, and a
 * rewritten page changes only the block around it. Entries that continue one another are one run:
 * CRIU splits long runs into entries by how full its page pipes are (1 MiB entries in a 256 MiB
 * mapping), which memory elsewhere can shift, so those splits must not become boundaries. Needs
 * the pagemap, so it cuts one pages image at a time; {@link Cutting} cuts one while CRIU still
 * writes it.
 */
public final class PagemapAlignedChunker implements Chunker {
  static final int PAGE_SIZE = 4096;

  private final List<MappedRun> runs;
  private final int blockBytes;

  /** {@code runs}: the pagemap entries whose pages are in the image, in image order. */
  public PagemapAlignedChunker(List<MappedRun> runs, int blockBytes) {
    requireBlock(blockBytes);
    this.runs = List.copyOf(runs);
    this.blockBytes = blockBytes;
  }

  @Override
  public void cut(InputStream image, ChunkSink sink) throws IOException {
    Cutting cutting = new Cutting(blockBytes, sink);
    for (MappedRun run : runs) {
      cutting.run(run, image);
    }
    cutting.finish();
    if (image.read() >= 0) {
      throw new IOException("the pages image is longer than the " + cutting.offset + " bytes its pagemap lists");
    }
  }

  /**
   * Cuts one pages image whose pagemap entries arrive one at a time, as CRIU writes them, with
   * exactly the boundaries {@link #cut} gives the complete image: a chunk ends at a block-aligned
   * address, and where the next entry does not continue the memory of the one before. So the last
   * chunk of an entry that stops inside a block is held until the next entry (or {@link #finish})
   * says whether memory goes on. At most one block is held.
   */
  public static final class Cutting {
    private final int blockBytes;
    private final ChunkSink sink;
    private final byte[] chunk;
    /** Bytes of the chunk being filled. */
    private int filled;
    /** The address after the last byte read; -1 before the first entry. */
    private long next = -1;
    private long offset;

    public Cutting(int blockBytes, ChunkSink sink) {
      requireBlock(blockBytes);
      this.blockBytes = blockBytes;
      this.sink = sink;
      this.chunk = new byte[blockBytes];
    }

    /** Reads the pages of {@code run}, the next entry of the image, from {@code image} and cuts what is complete. */
    public void run(MappedRun run, InputStream image) throws IOException {
      if (filled > 0 && run.address() != next) {
        emit();
      }
      long address = run.address();
      long end = run.address() + run.length();
      while (address < end) {
        int length = (int) Math.min(end - address, blockBytes - (address & (blockBytes - 1)));
        readFully(image, chunk, filled, length, offset);
        filled += length;
        address += length;
        offset += length;
        if ((address & (blockBytes - 1)) == 0) {
          emit();
        }
      }
      next = end;
    }

    /** The image is complete: cuts the chunk still held. */
    public void finish() throws IOException {
      if (filled > 0) {
        emit();
      }
    }

    /** Bytes of the image read so far. */
    public long offset() {
      return offset;
    }

    private void emit() throws IOException {
      sink.accept(chunk, 0, filled);
      filled = 0;
    }
  }

  private static void requireBlock(int blockBytes) {
    if (Integer.bitCount(blockBytes) != 1 || blockBytes < PAGE_SIZE) {
      throw new IllegalArgumentException("the block size must be a power of two of at least one page ("
          + PAGE_SIZE + " bytes), got " + blockBytes);
    }
  }

  private static void readFully(InputStream image, byte[] buffer, int at, int length, long offset) throws IOException {
    int filled = 0;
    while (filled < length) {
      int read = image.read(buffer, at + filled, length - filled);
      if (read < 0) {
        throw new EOFException("the pages image ends at byte " + (offset + filled)
            + ", before the memory its pagemap lists");
      }
      filled += read;
    }
  }

  @Override
  public String toString() {
    return "pagemap-aligned " + blockBytes;
  }

  /** Pages of one pagemap entry that are in the pages image: {@code length} bytes from {@code address}. */
  public record MappedRun(long address, long length) {
    public MappedRun {
      if (address < 0 || address % PAGE_SIZE != 0 || length <= 0 || length % PAGE_SIZE != 0) {
        throw new IllegalArgumentException("a pagemap run is whole pages at a page-aligned address, got "
            + length + " bytes at 0x" + Long.toHexString(address));
      }
    }
  }
}
