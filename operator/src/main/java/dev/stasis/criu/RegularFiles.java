package dev.stasis.criu;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The regular files (and directories) a dump recorded, read from CRIU's {@code files.img}: every
 * path CRIU will reopen at restore, with the size it will insist on when it recorded one. These are
 * exactly the files whose absence or change fails {@code criu restore}, seen at the instant the
 * tree was frozen.
 */
public final class RegularFiles {
  public static final String FILE_NAME = "files.img";

  // images/fdinfo.proto: file_entry {type = 1, reg = 3}, fd_types REG = 1
  private static final int FD_TYPE_REG = 1;

  /** One reg_file_entry (images/regfile.proto): its path, and its size when CRIU checks it. */
  public record RegularFile(String path, Long size) {}

  private RegularFiles() {}

  /** Empty when the dump has no files.img (nothing was open); fails on a malformed one. */
  public static List<RegularFile> read(Path imagesDir) throws IOException {
    List<RegularFile> files = new ArrayList<>();
    for (ProtobufMessage entry : ImageFile.read(imagesDir.resolve(FILE_NAME), ImageFile.FILES_MAGIC)) {
      // file_entry: type = 1, reg = 3 (reg_file_entry: name = 6, size = 8)
      Optional<ProtobufMessage> reg = entry.message(3);
      Optional<String> name = reg.flatMap(r -> r.string(6));
      if (entry.number(1, -1) == FD_TYPE_REG && name.isPresent()) {
        // CRIU keeps names as the process saw them; some versions drop the leading slash.
        files.add(new RegularFile(name.get().startsWith("/") ? name.get() : "/" + name.get(),
            reg.get().number(8).orElse(null)));
      }
    }
    return files;
  }
}
