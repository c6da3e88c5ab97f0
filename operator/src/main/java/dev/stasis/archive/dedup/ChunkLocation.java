package dev.stasis.archive.dedup;

import java.util.regex.Pattern;

/**
 * Where a chunk is stored: a loose object of its own ({@code <ns>/.chunks/…}, written before packs)
 * or a range of a pack ({@code <ns>/.packs/…/<packId>.pack}, from {@code offset}, the chunk's stored
 * bytes long). In a checkpoint's {@link ChunkIndex} a location is only a hint: the chunk's identity is
 * its name, a reader verifies what it fetched against the name, and when the hinted pack is gone
 * (repacked by the garbage collector) it looks the name up in the namespace's {@link PackIndex}es.
 */
public record ChunkLocation(String packId, long offset) {
  /** A loose chunk: one object named after the chunk. */
  public static final ChunkLocation LOOSE = new ChunkLocation(null, 0);
  private static final Pattern PACK_ID = Pattern.compile("[0-9a-f]{32}");

  public ChunkLocation {
    if (packId == null ? offset != 0 : !PACK_ID.matcher(packId).matches() || offset < 0) {
      throw new IllegalArgumentException("a pack location is a 32-hex-digit pack id and an offset >= 0, got "
          + packId + " at " + offset);
    }
  }

  public static ChunkLocation inPack(String packId, long offset) {
    return new ChunkLocation(packId, offset);
  }

  public boolean loose() {
    return packId == null;
  }

  @Override
  public String toString() {
    return loose() ? "loose" : "pack " + packId + "@" + offset;
  }
}
