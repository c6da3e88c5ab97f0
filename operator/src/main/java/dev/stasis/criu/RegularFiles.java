package dev.stasis.criu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The regular files (and directories) a dump recorded, read from CRIU's {@code files.img}: every
 * path CRIU will reopen at restore, with the size it will insist on when it recorded one, and from
 * the {@code mm-<id>.img} images which of them the tree maps shared and writable. These are
 * exactly the files whose absence or change fails {@code criu restore}, seen at the instant the
 * tree was frozen.
 */
public final class RegularFiles {
  public static final String FILE_NAME = "files.img";

  // images/mm.proto mm_entry.vmas = 14; images/vma.proto and CRIU's VMA_FILE_SHARED status bit
  private static final int MM_VMAS = 14;
  private static final int VMA_FILE_SHARED = 1 << 7;
  private static final int PROT_WRITE = 2;
  // images/fdinfo.proto: file_entry {type = 1, reg = 3}, fd_types REG = 1
  private static final int FD_TYPE_REG = 1;

  private static final Pattern MM_IMAGE = Pattern.compile("mm-\\d+\\.img");
  private static final int O_ACCMODE = 3;
  private static final int O_RDONLY = 0;
  private static final int S_IFMT = 0170000;
  private static final int S_IFREG = 0100000;
  private static final int S_IFDIR = 0040000;

  /**
   * One reg_file_entry (images/regfile.proto) as CRIU saw it while the tree was frozen: its path,
   * its size when CRIU checks it on restore, the flags it was open with and its inode's mode.
   *
   * @param flags open(2) flags of a file open on a descriptor (CRIU records a mapped file read-only)
   * @param mode st_mode, when this CRIU records it
   * @param mappedSharedWritable some process of the tree maps it MAP_SHARED with PROT_WRITE
   */
  public record RegularFile(String path, Long size, int flags, Integer mode, boolean mappedSharedWritable) {
    /** Open for writing, or mapped shared and writable: its content is the tree's own doing. */
    public boolean writable() {
      return (flags & O_ACCMODE) != O_RDONLY || mappedSharedWritable;
    }

    /** Empty when CRIU did not record the mode. */
    public Optional<Boolean> isDirectory() {
      return Optional.ofNullable(mode).map(m -> (m & S_IFMT) == S_IFDIR);
    }

    /** Empty when CRIU did not record the mode; false for devices, FIFOs and the like. */
    public Optional<Boolean> isRegularFile() {
      return Optional.ofNullable(mode).map(m -> (m & S_IFMT) == S_IFREG);
    }
  }

  private RegularFiles() {}

  /** Empty when the dump has no files.img (nothing was open); fails on a malformed image. */
  public static List<RegularFile> read(Path imagesDir) throws IOException {
    List<RegularFile> files = new ArrayList<>();
    List<ProtobufMessage> entries = ImageFile.read(imagesDir.resolve(FILE_NAME), ImageFile.FILES_MAGIC);
    if (entries.isEmpty()) {
      return files;
    }
    Set<Long> sharedWritable = sharedWritableFileIds(imagesDir);
    try {
      for (ProtobufMessage entry : entries) {
        // file_entry: type = 1, reg = 3 (reg_file_entry: id = 1, flags = 2, name = 6, size = 8, mode = 10)
        Optional<ProtobufMessage> reg = entry.message(3);
        Optional<String> name = reg.flatMap(r -> r.string(6));
        if (entry.number(1, -1) == FD_TYPE_REG && name.isPresent()) {
          ProtobufMessage file = reg.get();
          // CRIU keeps names as the process saw them; some versions drop the leading slash.
          files.add(new RegularFile(name.get().startsWith("/") ? name.get() : "/" + name.get(),
              file.number(8).orElse(null), (int) file.number(2, 0), file.number(10).map(Long::intValue).orElse(null),
              file.number(1).filter(sharedWritable::contains).isPresent()));
        }
      }
    } catch (RuntimeException e) {
      throw new IOException(FILE_NAME + " is malformed: " + e, e);
    }
    return files;
  }

  /** The ids of the files some VMA of the tree's {@code mm-<id>.img} images maps shared and writable (vma_entry.shmid). */
  private static Set<Long> sharedWritableFileIds(Path imagesDir) throws IOException {
    Set<Long> ids = new HashSet<>();
    List<Path> mms;
    try (Stream<Path> images = Files.list(imagesDir)) {
      mms = images.filter(p -> MM_IMAGE.matcher(p.getFileName().toString()).matches()).toList();
    }
    for (Path mm : mms) {
      try {
        for (ProtobufMessage entry : ImageFile.read(mm, ImageFile.MM_MAGIC)) {
          for (ProtobufMessage vma : entry.messages(MM_VMAS)) {
            // vma_entry: shmid = 4, prot = 5, status = 7
            if ((vma.number(7, 0) & VMA_FILE_SHARED) != 0 && (vma.number(5, 0) & PROT_WRITE) != 0) {
              vma.number(4).ifPresent(ids::add);
            }
          }
        }
      } catch (RuntimeException e) {
        throw new IOException(mm.getFileName() + " is malformed: " + e, e);
      }
    }
    return ids;
  }
}
