package dev.stasis.archive.dedup;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

/**
 * Cuts a CRIU pages image where its pagemap says dumped memory starts and ends, and at every
 * virtual address that is a multiple of the block size. Boundaries follow addresses, not offsets
 * in the image: memory mapped or unmapped elsewhere moves no other chunk's boundaries, and a
 * rewritten page changes only the block around it. Entries that continue one another are one run:
 * CRIU splits long runs into entries by how full its page pipes are (1 MiB entries in a 256 MiB
 * mapping), which memory elsewhere can shift, so those splits must not become boundaries. Needs
 * the pagemap, so it cuts one pages image at a time.
 */
public final class PagemapAlignedChunker implements Chunker {
  static final int PAGE_SIZE = 4096;

  private final List<MappedRun> runs;
  private final int blockBytes;

  /** {@code runs}: the pagemap entries whose pages are in the image, in image order. */
  public PagemapAlignedChunker(List<MappedRun> runs, int blockBytes) {
    if (Integer.bitCount(blockBytes) != 1 || blockBytes < PAGE_SIZE) {
      throw new IllegalArgumentException("the block size must be a power of two of at least one page ("
          + PAGE_SIZE + " bytes), got " + blockBytes);
    }
    this.runs = joined(runs);
    this.blockBytes = blockBytes;
  }

  private static List<MappedRun> joined(List<MappedRun> runs) {
    List<MappedRun> joined = new ArrayList<>();
    for (MappedRun run : runs) {
      MappedRun last = joined.isEmpty() ? null : joined.get(joined.size() - 1);
      if (last != null && last.address() + last.length() == run.address()) {
        joined.set(joined.size() - 1, new MappedRun(last.address(), last.length() + run.length()));
      } else {
        joined.add(run);
      }
    }
    return List.copyOf(joined);
  }

  @Override
  public void cut(InputStream image, ChunkSink sink) throws IOException {
    byte[] buffer = new byte[blockBytes];
    long offset = 0;
    for (MappedRun run : runs) {
      long address = run.address();
      long end = run.address() + run.length();
      while (address < end) {
        int length = (int) Math.min(end - address, blockBytes - (address & (blockBytes - 1)));
        readFully(image, buffer, length, offset);
        sink.accept(buffer, 0, length);
        address += length;
        offset += length;
      }
    }
    if (image.read() >= 0) {
      throw new IOException("the pages image is longer than the " + offset + " bytes its pagemap lists");
    }
  }

  private static void readFully(InputStream image, byte[] buffer, int length, long offset) throws IOException {
    int filled = 0;
    while (filled < length) {
      int read = image.read(buffer, filled, length - filled);
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
