package dev.stasis.agent.checkpoint;

import dev.stasis.archive.dedup.PagemapAlignedChunker;
import dev.stasis.archive.dedup.TarSkeleton;
import dev.stasis.criu.DumpContents;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The pages images in a kubelet's checkpoint archive that a deduplicated pod checkpoint stores as
 * chunks: each {@code checkpoint/pages-<n>.img} that a process's {@code checkpoint/pagemap-<pid>.img}
 * in the same tar names, cut where that pagemap says (as a process checkpoint's images are). Found
 * from the tar's headers and its pagemaps alone, read at their offsets in the file. Anything else
 * (shared memory's pages, an image whose length is not what its pagemap lists) stays in the tar
 * skeleton as it is.
 */
final class KubeletArchiveImages {
  private static final Pattern PAGEMAP = Pattern.compile("checkpoint/pagemap-([0-9]{1,10})\\.img");
  private static final Pattern PAGES = Pattern.compile("checkpoint/(pages-([0-9]{1,10})\\.img)");
  /** Far above any pagemap CRIU writes; a larger entry is not one. */
  private static final long MAX_PAGEMAP_BYTES = 64L << 20;
  private static final int READ_BUFFER = 1 << 20;

  private KubeletArchiveImages() {}

  /** The images left out of the skeleton, in tar order, and the same images to cut. */
  record Found(List<TarSkeleton.Image> holes, List<ChunkedImagesUpload.CompleteImage> toCut) {}

  static Found in(Path archive, FileChannel tar) throws IOException {
    List<TarSkeleton.Entry> files = TarSkeleton.files(archive);
    Map<Long, List<PagemapAlignedChunker.MappedRun>> runsByPagesId = new HashMap<>();
    for (TarSkeleton.Entry file : files) {
      Matcher pagemap = PAGEMAP.matcher(file.name());
      if (!pagemap.matches()) {
        continue;
      }
      if (file.bytes() > MAX_PAGEMAP_BYTES) {
        throw new IOException(file.name() + " in " + archive + " is " + file.bytes() + " bytes: not a pagemap CRIU wrote");
      }
      DumpContents.Pagemap read = DumpContents.pagemap(
          TarSkeleton.range(tar, file.dataOffset(), file.bytes()).readAllBytes(), file.name());
      List<PagemapAlignedChunker.MappedRun> runs = read.runs().stream()
          .map(run -> new PagemapAlignedChunker.MappedRun(run.address(), run.bytes())).toList();
      if (!runs.isEmpty() && runsByPagesId.put(read.pagesId(), runs) != null) {
        throw new IOException("two pagemaps in " + archive + " name pages-" + read.pagesId() + ".img: not a dump CRIU wrote");
      }
    }
    List<TarSkeleton.Image> holes = new ArrayList<>();
    List<ChunkedImagesUpload.CompleteImage> toCut = new ArrayList<>();
    for (TarSkeleton.Entry file : files.stream().sorted(Comparator.comparingLong(TarSkeleton.Entry::dataOffset)).toList()) {
      Matcher pages = PAGES.matcher(file.name());
      if (!pages.matches()) {
        continue;
      }
      List<PagemapAlignedChunker.MappedRun> runs = runsByPagesId.get(Long.parseLong(pages.group(2)));
      if (runs == null || runs.stream().mapToLong(PagemapAlignedChunker.MappedRun::length).sum() != file.bytes()) {
        continue;
      }
      holes.add(new TarSkeleton.Image(pages.group(1), file.dataOffset(), file.bytes()));
      toCut.add(new ChunkedImagesUpload.CompleteImage(pages.group(1), runs,
          new BufferedInputStream(TarSkeleton.range(tar, file.dataOffset(), file.bytes()), READ_BUFFER)));
    }
    return new Found(holes, toCut);
  }
}
