package dev.stasis.agent.restore;

import dev.stasis.archive.dedup.ChunkIndex;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Plans the requests of a restore: the chunks a stretch of an image needs, grouped by the pack that
 * holds them and sorted by their offset in it, each pack read in as few ranged GETs as possible. A
 * GET reads on over a gap of up to {@value #MAX_GAP} bytes of chunks the restore does not need
 * (cheaper than another request: the storage's per-request work and the client's), and a chunk
 * needed at several places of an image is read once. After nine checkpoints that each rewrote 5%
 * of a process, an image's chunks hop from pack to pack every few chunks; read in image order that
 * was a request per hop, read by pack it is about one per pack.
 */
final class PackReads {
  /**
   * Bytes of chunks a read passes over rather than end and start another request. For the 10th
   * checkpoint of bench/dedup-operator.sh (1 GiB, 101 packs): no gap 941 requests; 512 KiB 532 and
   * 7.7% more bytes than needed; 1 MiB 343 and 20% more. A request costs s3proxy about what 1 MiB
   * of body does, so both cost alike in CPU, and 512 KiB reads fewer bytes a store's network may
   * charge for (bench/analysis.md).
   */
  static final int MAX_GAP = 512 << 10;

  private PackReads() {}

  /** A chunk a restore needs, and where in its image it goes. */
  record Slot(ChunkIndex.ChunkRef chunk, long imageOffset) {
    long packOffset() {
      return chunk.location().offset();
    }

    long packEnd() {
      return packOffset() + chunk.storedBytes();
    }
  }

  /**
   * One request: {@code length} bytes of a pack from {@code offset}, holding its slots in the order
   * of their offsets (a chunk needed twice is two slots at one offset); or, with {@code packId} null,
   * one loose chunk.
   */
  record Read(String packId, long offset, long length, List<Slot> slots) {}

  /** The reads that fetch every slot, each slot in exactly one. */
  static List<Read> plan(List<Slot> slots) {
    List<Read> reads = new ArrayList<>();
    Map<String, List<Slot>> byPack = new LinkedHashMap<>();
    for (Slot slot : slots) {
      if (slot.chunk().location().loose()) {
        reads.add(new Read(null, 0, slot.chunk().storedBytes(), List.of(slot)));
      } else {
        byPack.computeIfAbsent(slot.chunk().location().packId(), id -> new ArrayList<>()).add(slot);
      }
    }
    Comparator<Slot> inPack = Comparator.comparingLong(Slot::packOffset).thenComparingLong(Slot::imageOffset);
    byPack.forEach((packId, inThisPack) -> {
      inThisPack.sort(inPack);
      List<Slot> read = new ArrayList<>();
      for (Slot slot : inThisPack) {
        if (!read.isEmpty() && !continues(read.get(read.size() - 1), slot)) {
          reads.add(read(packId, read));
          read = new ArrayList<>();
        }
        read.add(slot);
      }
      reads.add(read(packId, read));
    });
    return reads;
  }

  /**
   * Whether a read that ends with {@code last} can go on to {@code next}: the same stored object
   * again, or one that starts at most {@value #MAX_GAP} bytes after it. Objects that overlap (only
   * an altered index lists such) are read by separate requests, each checked against its name.
   */
  private static boolean continues(Slot last, Slot next) {
    boolean same = next.packOffset() == last.packOffset() && next.chunk().storedBytes() == last.chunk().storedBytes();
    return same || (next.packOffset() >= last.packEnd() && next.packOffset() - last.packEnd() <= MAX_GAP);
  }

  private static Read read(String packId, List<Slot> slots) {
    long offset = slots.get(0).packOffset();
    long end = slots.stream().mapToLong(Slot::packEnd).max().orElseThrow();
    return new Read(packId, offset, end - offset, List.copyOf(slots));
  }
}
