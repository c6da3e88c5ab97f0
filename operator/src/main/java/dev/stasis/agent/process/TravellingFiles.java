package dev.stasis.agent.process;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import dev.stasis.agent.TravellingFileLimits;
import dev.stasis.agent.WorkFailure;
import dev.stasis.archive.Manifest.RequiredPath;
import dev.stasis.criu.RegularFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Job-private files on tmpfs that travel with a process checkpoint: MPI's shared-memory segments
 * in /dev/shm, scratch files on a tmpfs. They live only in the memory of the node the job ran on,
 * so a restore anywhere else, or after that node rebooted, needs them carried along; CRIU reopens
 * them by path and does not carry their content.
 *
 * <p>While CRIU holds the tree frozen, every regular file on a tmpfs that CRIU recorded open or
 * mapped is copied into the images folder ({@value #FOLDER}/N); the archive carries the copies like
 * any image, compressed, encrypted and covered by its sha256. Their sha256 (of the copies, taken
 * after the freeze), size, permissions and owner go into the manifest's paths, marked
 * {@code travelsAs}. A restore checks each copy against the manifest and puts it back at its path
 * before CRIU runs, unless a file with that content is there already.
 */
public final class TravellingFiles {
  static final String FOLDER = "travelling";
  private static final Pattern ENTRY = Pattern.compile(FOLDER + "/\\d{1,9}");
  /** statfs(2)'s f_type of a tmpfs (linux/magic.h). */
  private static final long TMPFS_MAGIC = 0x01021994L;
  private static final int LISTED = 5;

  private TravellingFiles() {}

  /**
   * A file copied while the tree was frozen, and the sha256 of the copy once hashed.
   *
   * @param permissions as ls shows them ("rw-------")
   */
  public record Captured(String path, String entry, Path copy, long size, String permissions, int uid, int gid,
      String sha256) {
    Captured hashed() throws IOException {
      return new Captured(path, entry, copy, size, permissions, uid, gid, FileIdentity.sha256(copy));
    }

    /** How the manifest lists it: kind as the tree held it, the content it must have, where it travels. */
    RequiredPath asRequiredPath(String kind, boolean written) {
      RequiredPath required = new RequiredPath(path, kind);
      required.size = size;
      required.sha256 = sha256;
      required.written = written ? Boolean.TRUE : null;
      required.travelsAs = entry;
      required.permissions = permissions;
      required.uid = uid;
      required.gid = gid;
      return required;
    }
  }

  /**
   * Copies, into {@code imagesDir}, the files on tmpfs that CRIU's images record the tree held:
   * call while the tree is frozen. Nothing is hashed here, so the freeze lasts no longer than the
   * copying takes.
   *
   * @throws WorkFailure {@code TravellingFilesTooLarge} above {@code limits}, naming the files
   */
  public static List<Captured> capture(Path imagesDir, ProcessInventory inventory, TravellingFileLimits limits)
      throws WorkFailure {
    List<RegularFiles.RegularFile> recorded;
    try {
      recorded = RegularFiles.read(imagesDir);
    } catch (IOException e) {
      throw new WorkFailure("CriuDumpFailed", "cannot read the files CRIU recorded: " + e.getMessage());
    }
    Map<String, Long> onTmpfs = new LinkedHashMap<>();
    for (RegularFiles.RegularFile file : recorded) {
      Path source = inventory.onSource(file.path());
      if (!onTmpfs.containsKey(file.path()) && file.isRegularFile().orElse(true) && inventory.isOnTmpfs(file.path())
          && Files.isRegularFile(source, LinkOption.NOFOLLOW_LINKS)) {
        try {
          onTmpfs.put(file.path(), Files.size(source));
        } catch (IOException e) {
          throw new WorkFailure("TravellingFileUnreadable", "cannot read " + file.path() + ", a file on tmpfs the job"
              + " holds, which must travel with the checkpoint: " + e.getMessage() + ". The workload was resumed");
        }
      }
    }
    requireWithin(onTmpfs, limits);
    List<Captured> captured = new ArrayList<>();
    for (var file : onTmpfs.entrySet()) {
      String entry = FOLDER + "/" + captured.size();
      try {
        captured.add(copy(inventory.onSource(file.getKey()), file.getKey(), entry, imagesDir.resolve(entry)));
      } catch (IOException e) {
        throw new WorkFailure("TravellingFileUnreadable", "cannot copy " + file.getKey() + ", a file on tmpfs the job"
            + " holds, which must travel with the checkpoint: " + e.getMessage() + ". The workload was resumed");
      }
    }
    return captured;
  }

  /** The sha256 of each copy: after the freeze. */
  public static List<Captured> hash(List<Captured> captured) throws IOException {
    List<Captured> hashed = new ArrayList<>();
    for (Captured file : captured) {
      hashed.add(file.hashed());
    }
    return hashed;
  }

  /**
   * Before {@code criu restore}: each file that travelled, from the unpacked {@code imagesDir},
   * checked against the manifest and put at its path on this node (under {@code hostRoot}), on a
   * tmpfs only, unless a file with its content is there already. A file that is there with other
   * content is replaced by a rename, so a process that still has the old one open keeps it.
   *
   * @return the paths put back
   * @throws WorkFailure {@code ArchiveCorrupted} when a copy does not match the manifest,
   *     {@code TravellingFileNotPutBack} when a file cannot be put back
   */
  public static List<String> putBack(List<RequiredPath> paths, Path imagesDir, Path hostRoot) throws WorkFailure {
    List<String> put = new ArrayList<>();
    if (paths == null) {
      return put;
    }
    Path root = hostRoot.toAbsolutePath().normalize();
    for (RequiredPath file : paths) {
      if (file.travelsAs == null) {
        continue;
      }
      Path target = root.resolve(file.path.replaceFirst("^/+", "")).normalize();
      if (!ENTRY.matcher(file.travelsAs).matches() || !file.path.startsWith("/") || !target.startsWith(root)
          || target.equals(root) || file.size == null || file.sha256 == null) {
        throw new WorkFailure("ManifestInvalid", "the manifest's travelling file " + file.path + " (" + file.travelsAs
            + ") is not one this agent can put back");
      }
      Path copy = imagesDir.resolve(file.travelsAs);
      try {
        if (!Files.isRegularFile(copy, LinkOption.NOFOLLOW_LINKS) || Files.size(copy) != file.size
            || !FileIdentity.sha256(copy).equals(file.sha256)) {
          throw new WorkFailure("ArchiveCorrupted", "the archive's copy of " + file.path + " (" + file.travelsAs
              + ") is not what its manifest records: restore another checkpoint");
        }
        if (sameContent(target, file)) {
          continue;
        }
        Files.createDirectories(target.getParent());
        if (!isTmpfs(target.getParent())) {
          throw new WorkFailure("TravellingFileNotPutBack", "cannot put " + file.path + " back on this node: it"
              + " travelled from a tmpfs, and here " + file.path.substring(0, file.path.lastIndexOf('/') + 1)
              + " is not on one. Nothing was restored");
        }
        Path temporary = target.resolveSibling("." + target.getFileName() + ".stasis-" + UUID.randomUUID());
        try {
          Files.copy(copy, temporary);
          if (file.permissions != null) {
            Files.setPosixFilePermissions(temporary, PosixFilePermissions.fromString(file.permissions));
          }
          if (file.uid != null && file.gid != null) {
            Files.setAttribute(temporary, "unix:uid", file.uid, LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(temporary, "unix:gid", file.gid, LinkOption.NOFOLLOW_LINKS);
          }
          Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
          Files.deleteIfExists(temporary);
        }
        put.add(file.path);
      } catch (IOException | IllegalArgumentException e) {
        throw new WorkFailure("TravellingFileNotPutBack", "cannot put " + file.path + ", which travelled with the"
            + " checkpoint, back on this node: " + e.getMessage() + ". Nothing was restored");
      }
    }
    return put;
  }

  /**
   * Whether {@code directory} is on a tmpfs, asked of the kernel: the agent may reach the node's
   * files through another mount namespace (--host-root /proc/1/root), whose mounts its own
   * /proc/self/mounts does not list.
   */
  private static boolean isTmpfs(Path directory) throws IOException {
    byte[] statfs = new byte[256]; // struct statfs is 120 bytes on 64-bit Linux, f_type its first field
    try {
      LibC.C.statfs(directory.toString(), statfs);
    } catch (LastErrorException e) {
      throw new IOException("statfs " + directory + ": " + e.getMessage(), e);
    }
    return ByteBuffer.wrap(statfs).order(ByteOrder.nativeOrder()).getLong(0) == TMPFS_MAGIC;
  }

  /** The C library call Java 17 has no API for. */
  private interface LibC extends Library {
    LibC C = Native.load("c", LibC.class);

    int statfs(String path, byte[] buf) throws LastErrorException;
  }

  private static boolean sameContent(Path target, RequiredPath file) throws IOException {
    return Files.isRegularFile(target, LinkOption.NOFOLLOW_LINKS) && Files.size(target) == file.size
        && FileIdentity.sha256(target).equals(file.sha256);
  }

  private static void requireWithin(Map<String, Long> files, TravellingFileLimits limits) throws WorkFailure {
    long bytes = files.values().stream().mapToLong(Long::longValue).sum();
    if (files.size() <= limits.maxFiles() && bytes <= limits.maxBytes()) {
      return;
    }
    String listed = files.keySet().stream().limit(LISTED).collect(Collectors.joining(", "))
        + (files.size() > LISTED ? " and " + (files.size() - LISTED) + " more" : "");
    throw new WorkFailure("TravellingFilesTooLarge", "the job holds " + files.size()
        + (files.size() == 1 ? " file" : " files") + " on tmpfs (" + listed
        + ") of " + bytes + " bytes in all, which would have to travel with the checkpoint; this agent carries at most "
        + limits.maxFiles() + " files and " + limits.maxBytes() + " bytes (--travelling-files-max-count,"
        + " --travelling-files-max-bytes; Helm agent.travellingFiles.maxCount, maxBytes). Raise the limits, or have the"
        + " job keep them on a filesystem every node mounts. The workload was resumed and nothing was stored");
  }

  /** Copies with copy_file_range/sendfile where the JDK can: the tree is frozen meanwhile. */
  private static Captured copy(Path source, String path, String entry, Path copy) throws IOException {
    Files.createDirectories(copy.getParent());
    long size;
    try (FileChannel in = FileChannel.open(source, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS);
        FileChannel out = FileChannel.open(copy, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      size = in.size();
      long done = 0;
      while (done < size) {
        long n = in.transferTo(done, size - done, out);
        if (n <= 0) {
          break; // it shrank: what was there is what travels, and CRIU's own size check decides
        }
        done += n;
      }
      size = done;
    }
    return new Captured(path, entry, copy, size,
        PosixFilePermissions.toString(Files.getPosixFilePermissions(source, LinkOption.NOFOLLOW_LINKS)),
        (Integer) Files.getAttribute(source, "unix:uid", LinkOption.NOFOLLOW_LINKS),
        (Integer) Files.getAttribute(source, "unix:gid", LinkOption.NOFOLLOW_LINKS), null);
  }
}
