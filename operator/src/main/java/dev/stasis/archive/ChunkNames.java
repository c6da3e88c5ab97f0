package dev.stasis.archive;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How a file that was archived in pieces is named: {@code pages-1.img.chunk-000000},
 * {@code pages-1.img.chunk-000001}, … Each chunk is a tar entry of its own, so a file can be
 * archived (and uploaded) while it is still being written; {@link ArchiveReader} joins the chunks
 * back into the one file, and plain {@code tar x} followed by {@code cat pages-1.img.chunk-* >
 * pages-1.img} does the same by hand.
 */
final class ChunkNames {
  private static final Pattern CHUNK = Pattern.compile("(.+)\\.chunk-(\\d{6})");
  static final int MAX_CHUNKS = 1_000_000;

  private ChunkNames() {}

  static String name(String fileName, int index) {
    if (index < 0 || index >= MAX_CHUNKS) {
      throw new IllegalArgumentException("chunk index must be in [0, " + MAX_CHUNKS + "), got " + index);
    }
    return String.format("%s.chunk-%06d", fileName, index);
  }

  static boolean isChunkName(String entryName) {
    return CHUNK.matcher(entryName).matches();
  }

  static Optional<Chunk> parse(String entryName) {
    Matcher m = CHUNK.matcher(entryName);
    return m.matches() ? Optional.of(new Chunk(m.group(1), Integer.parseInt(m.group(2)))) : Optional.empty();
  }

  /** One piece of a file: its name in the archive and its place in the file. */
  record Chunk(String fileName, int index) {}
}
