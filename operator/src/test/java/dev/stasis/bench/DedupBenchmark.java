package dev.stasis.bench;

import dev.stasis.archive.dedup.ChunkNamer;
import dev.stasis.archive.dedup.Chunker;
import dev.stasis.archive.dedup.ContentDefinedChunker;
import dev.stasis.archive.dedup.PagemapAlignedChunker;
import dev.stasis.archive.dedup.PagemapAlignedChunker.MappedRun;
import dev.stasis.criu.DumpContents;
import dev.stasis.criu.DumpContents.PagesImage;
import java.io.BufferedInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * {@code bench/dedup.sh}: how much a deduplicated checkpoint would upload and store, for each
 * chunker and chunk size, on synthetic CRIU pages images of incompressible memory shaped like a
 * process's (a few small mappings, the heap in four large ones), for issue 18's cases: 5% rewritten
 * in 1 MiB blocks; a new mapping of 1/16 of the memory in the middle of the address space (64 MiB
 * of 1 GiB); 5% of pages rewritten at scattered places; 10 checkpoints with 5% rewritten in blocks
 * between each. Chunks are named as stored (HMAC-SHA256, {@link ChunkNamer}); a chunk counts as
 * uploaded when the store does not yet hold its name. Prints a Markdown table (bench/dedup.md).
 *
 * <p>Arguments: {@code [size in MiB, default 256]}, or {@code --dumps <pid> <directory>...}: 12 real
 * CRIU dumps of one process (see {@link #realDumps}).
 */
public final class DedupBenchmark {
  private static final int PAGE = 4096;
  private static final int KIB = 1024;
  private static final int MIB = 1024 * KIB;
  private static final int[] AVERAGES = {16 * KIB, 64 * KIB, 128 * KIB, 256 * KIB, MIB, 4 * MIB};
  private static final int CHECKPOINTS = 10;

  private DedupBenchmark() {}

  /** What a checkpoint sees: the pages image and its pagemap. */
  private record Memory(byte[] pages, List<MappedRun> runs) {}

  /** Chunk names and sizes a storage holds for one namespace. */
  private static final class Store {
    final Map<String, Integer> chunks = new HashMap<>();

    long stored() {
      return chunks.values().stream().mapToLong(Integer::longValue).sum();
    }
  }

  /** One checkpoint's cut: its chunks, and what it added to the store. */
  private record Cut(long chunks, long uploaded, double seconds) {}

  public static void main(String[] args) throws IOException {
    if (args.length > 0 && args[0].equals("--dumps")) {
      realDumps(Long.parseLong(args[1]), Arrays.stream(args, 2, args.length).map(Path::of).toList());
      return;
    }
    int size = (args.length > 0 ? Integer.parseInt(args[0]) : 256) * MIB;
    ChunkNamer namer = ChunkNamer.forNamespace(new byte[32], "bench");
    System.out.printf("%d MiB of incompressible memory; uploaded = bytes of chunks the store lacked, as %% of the"
        + " checkpoint's memory; stored = all chunks after %d checkpoints, as multiples of the memory%n%n",
        size / MIB, CHECKPOINTS);
    System.out.println("| chunker | chunk size (avg) | chunks per checkpoint | MiB/s cut+named | 5% in 1 MiB blocks:"
        + " uploaded | new mapping of 1/16 in the middle: uploaded | 5% scattered pages: uploaded"
        + " | 10 checkpoints, 5% each: stored |");
    System.out.println("|---|---|---|---|---|---|---|---|");
    for (boolean aligned : new boolean[] {false, true}) {
      for (int average : AVERAGES) {
        row(aligned, average, size, namer);
      }
    }
  }

  private static void row(boolean aligned, int average, int size, ChunkNamer namer) throws IOException {
    Memory base = base(size);
    cut(base, aligned, average, namer, new Store()); // so the time below is not the JIT's
    Store store = new Store();
    Cut first = cut(base, aligned, average, namer, store);
    Map<String, Integer> afterFirst = Map.copyOf(store.chunks);

    Cut blocks = cut(rewriteBlocks(base, 0.05, 11), aligned, average, namer, copy(afterFirst));
    Cut mapped = cut(mapInTheMiddle(base, size / 16, 12), aligned, average, namer, copy(afterFirst));
    Cut scattered = cut(rewritePages(base, 0.05, 13), aligned, average, namer, copy(afterFirst));
    Memory current = base;
    base = null; // only the current version is held from here on
    for (int checkpoint = 2; checkpoint <= CHECKPOINTS; checkpoint++) {
      current = rewriteBlocks(current, 0.05, 100 + checkpoint);
      cut(current, aligned, average, namer, store);
    }
    System.out.printf("| %s | %s | %d | %.0f | %.1f%% | %.1f%% | %.1f%% | %.2f× |%n",
        aligned ? "pagemap-aligned" : "content-defined (FastCDC)", sizeName(average), first.chunks(),
        size / (double) MIB / first.seconds(), percent(blocks.uploaded(), size),
        percent(mapped.uploaded(), size + size / 16), percent(scattered.uploaded(), size),
        store.stored() / (double) size);
  }

  /**
   * Real CRIU dumps of one process ({@code memchurn}, bench/dedup-criu.sh), in this order: a first
   * checkpoint, 9 more with 5% rewritten in blocks before each, one after a new mapping of 1/16,
   * one after 5% of pages rewritten at scattered places. Each is measured against the store all
   * before it filled, as a schedule would.
   */
  private static void realDumps(long pid, List<Path> dumps) throws IOException {
    if (dumps.size() != CHECKPOINTS + 2) {
      throw new IllegalArgumentException("--dumps needs a PID and " + (CHECKPOINTS + 2) + " image directories, got "
          + dumps.size());
    }
    List<PagesImage> images = new ArrayList<>();
    for (Path dump : dumps) {
      images.add(DumpContents.pagesImage(dump, pid));
    }
    long size = Files.size(images.get(0).file());
    System.out.printf("%d real CRIU dumps of PID %d, %d MiB of pages and %d pagemap entries in the first%n%n",
        dumps.size(), pid, size / MIB, images.get(0).runs().size());
    System.out.println("| chunker | chunk size (avg) | chunks per checkpoint | 2nd checkpoint, 5% in blocks: uploaded"
        + " | 10 checkpoints: stored | then a new mapping of 1/16: uploaded | then 5% scattered pages: uploaded |");
    System.out.println("|---|---|---|---|---|---|---|");
    ChunkNamer namer = ChunkNamer.forNamespace(new byte[32], "bench");
    for (boolean aligned : new boolean[] {false, true}) {
      for (int average : AVERAGES) {
        Store store = new Store();
        long chunks = cut(images.get(0), aligned, average, namer, store).chunks();
        long second = cut(images.get(1), aligned, average, namer, store).uploaded();
        for (int i = 2; i < CHECKPOINTS; i++) {
          cut(images.get(i), aligned, average, namer, store);
        }
        long stored = store.stored();
        long mapped = cut(images.get(CHECKPOINTS), aligned, average, namer, store).uploaded();
        long scattered = cut(images.get(CHECKPOINTS + 1), aligned, average, namer, store).uploaded();
        System.out.printf("| %s | %s | %d | %.1f%% | %.2f× | %.1f%% | %.1f%% |%n",
            aligned ? "pagemap-aligned" : "content-defined (FastCDC)", sizeName(average), chunks,
            percent(second, Files.size(images.get(1).file())), stored / (double) size,
            percent(mapped, Files.size(images.get(CHECKPOINTS).file())),
            percent(scattered, Files.size(images.get(CHECKPOINTS + 1).file())));
      }
    }
  }

  private static Cut cut(PagesImage image, boolean aligned, int average, ChunkNamer namer, Store store)
      throws IOException {
    Chunker chunker = aligned
        ? new PagemapAlignedChunker(image.runs().stream().map(r -> new MappedRun(r.address(), r.bytes())).toList(), average)
        : ContentDefinedChunker.ofAverage(average);
    try (InputStream pages = new BufferedInputStream(Files.newInputStream(image.file()), MIB)) {
      return cut(chunker, pages, namer, store);
    }
  }

  private static Store copy(Map<String, Integer> chunks) {
    Store store = new Store();
    store.chunks.putAll(chunks);
    return store;
  }

  private static Cut cut(Memory memory, boolean aligned, int average, ChunkNamer namer, Store store)
      throws IOException {
    Chunker chunker = aligned ? new PagemapAlignedChunker(memory.runs(), average)
        : ContentDefinedChunker.ofAverage(average);
    return cut(chunker, new ByteArrayInputStream(memory.pages()), namer, store);
  }

  private static Cut cut(Chunker chunker, InputStream image, ChunkNamer namer, Store store) throws IOException {
    long[] counts = new long[2];
    long start = System.nanoTime();
    chunker.cut(image, (bytes, offset, length) -> {
      counts[0]++;
      if (store.chunks.putIfAbsent(namer.name(bytes, offset, length), length) == null) {
        counts[1] += length;
      }
    });
    return new Cut(counts[0], counts[1], (System.nanoTime() - start) / 1e9);
  }

  /**
   * Forty small mappings (1 to 16 pages: libraries, stacks), then the heap in four equal mappings
   * with a gap between the second and the third.
   */
  private static Memory base(int size) {
    Random random = new Random(1);
    List<MappedRun> runs = new ArrayList<>();
    long smallBytes = 0;
    for (int i = 0; i < 40; i++) {
      long length = (1 + random.nextInt(16)) * (long) PAGE;
      runs.add(new MappedRun(0x400000L + i * 0x1000000L, length));
      smallBytes += length;
    }
    int heap = (int) (size - smallBytes) / 4 / PAGE * PAGE;
    for (int i = 0; i < 4; i++) {
      runs.add(new MappedRun(0x7f0000000000L + i * 0x100000000L * (i >= 2 ? 2 : 1), heap));
    }
    byte[] pages = new byte[(int) smallBytes + 4 * heap];
    random.nextBytes(pages);
    return new Memory(pages, runs);
  }

  /** {@code fraction} of the memory (rounded to whole MiB) rewritten in 1 MiB blocks at page-aligned places, none overlapping. */
  private static Memory rewriteBlocks(Memory memory, double fraction, long seed) {
    Random random = new Random(seed);
    byte[] pages = memory.pages().clone();
    List<Integer> slots = new ArrayList<>();
    for (int slot = 0; slot + 2 * MIB <= pages.length; slot += 2 * MIB) {
      slots.add(slot);
    }
    Collections.shuffle(slots, random);
    byte[] block = new byte[MIB];
    for (int i = 0; i < Math.round(pages.length * fraction / MIB); i++) {
      random.nextBytes(block);
      System.arraycopy(block, 0, pages, slots.get(i) + random.nextInt(MIB / PAGE) * PAGE, MIB);
    }
    return new Memory(pages, memory.runs());
  }

  /** {@code fraction} of the pages rewritten, each at a random place. */
  private static Memory rewritePages(Memory memory, double fraction, long seed) {
    Random random = new Random(seed);
    byte[] pages = memory.pages().clone();
    int count = pages.length / PAGE;
    List<Integer> all = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      all.add(i);
    }
    Collections.shuffle(all, random);
    byte[] page = new byte[PAGE];
    for (int i = 0; i < Math.round(count * fraction); i++) {
      random.nextBytes(page);
      System.arraycopy(page, 0, pages, all.get(i) * PAGE, PAGE);
    }
    return new Memory(pages, memory.runs());
  }

  /** A new mapping of {@code length} bytes in the gap between the second and the third heap mapping. */
  private static Memory mapInTheMiddle(Memory memory, int length, long seed) {
    List<MappedRun> runs = new ArrayList<>(memory.runs());
    int index = runs.size() - 2;
    long at = runs.subList(0, index).stream().mapToLong(MappedRun::length).sum();
    runs.add(index, new MappedRun(runs.get(index - 1).address() + 0x100000000L + 5 * PAGE, length));
    byte[] inserted = new byte[length];
    new Random(seed).nextBytes(inserted);
    byte[] pages = new byte[memory.pages().length + length];
    System.arraycopy(memory.pages(), 0, pages, 0, (int) at);
    System.arraycopy(inserted, 0, pages, (int) at, length);
    System.arraycopy(memory.pages(), (int) at, pages, (int) at + length, memory.pages().length - (int) at);
    return new Memory(pages, runs);
  }

  private static double percent(long part, long whole) {
    return 100.0 * part / whole;
  }

  private static String sizeName(int bytes) {
    return bytes >= MIB ? bytes / MIB + " MiB" : bytes / KIB + " KiB";
  }
}
