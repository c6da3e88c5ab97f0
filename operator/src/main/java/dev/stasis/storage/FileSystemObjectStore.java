package dev.stasis.storage;

import static java.nio.file.StandardOpenOption.CREATE_NEW;
import static java.nio.file.StandardOpenOption.READ;
import static java.nio.file.StandardOpenOption.WRITE;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.FileVisitResult;
import java.nio.file.LinkOption;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.commons.io.input.BoundedInputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Object storage in a local directory, for single-node clusters and {@code stasis local}: each
 * object is the file at its key's path under the root.
 *
 * <p>An upload writes a hidden temporary file next to its target ({@code .<name>.partial-<random>})
 * and {@link ObjectUpload#commit() commit} fsyncs it and renames it into place, so a reader sees
 * a whole object or none, also after a crash. Listings skip such partial files.
 *
 * <p>Archives hold the memory of the processes checkpointed, so what the store creates is for its
 * owner and its group only ({@code rwxrwx---}, {@code rw-rw----}), whatever the umask. The group
 * lets two users share a store: on a cluster the root agent writes archives that the operator,
 * user 65532, checks and deletes; the root is then owned by group 65532 and setgid, so that every
 * folder and file below it takes that group (a setgid bit on a folder is kept).
 */
public final class FileSystemObjectStore implements ObjectStore {
  private static final Logger LOG = LoggerFactory.getLogger(FileSystemObjectStore.class);
  private static final String PARTIAL_MARKER = ".partial-";
  // Archives arrive in small compressed chunks; write them to the file in large ones.
  private static final int BUFFER_SIZE = 1 << 20;
  private static final int FOLDER_MODE = 0770;
  private static final int FILE_MODE = 0660;
  private static final int SPECIAL_BITS = 07000;

  private final Path root;

  public FileSystemObjectStore(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  @Override
  public ObjectUpload upload(String key) throws IOException {
    Path target = pathOf(key);
    createFolders(target.getParent());
    Path partial = target.resolveSibling("." + target.getFileName() + PARTIAL_MARKER + randomName());
    FileChannel channel = FileChannel.open(partial, CREATE_NEW, WRITE);
    try {
      setMode(partial, FILE_MODE);
    } catch (IOException e) {
      channel.close();
      Files.deleteIfExists(partial);
      throw e;
    }
    return new FileUpload(partial, target, channel);
  }

  @Override
  public void put(String key, byte[] content) throws IOException {
    try (ObjectUpload upload = upload(key)) {
      upload.stream().write(content);
      upload.commit();
    }
  }

  @Override
  public InputStream open(String key) throws IOException {
    try {
      return Files.newInputStream(pathOf(key));
    } catch (NoSuchFileException e) {
      throw new ObjectNotFoundException(uri(key));
    }
  }

  @Override
  public byte[] read(String key) throws IOException {
    try {
      return Files.readAllBytes(pathOf(key));
    } catch (NoSuchFileException e) {
      throw new ObjectNotFoundException(uri(key));
    }
  }

  @Override
  public InputStream openRange(String key, long offset, long length) throws IOException {
    if (offset < 0 || length <= 0) {
      throw new IllegalArgumentException("a range of " + length + " bytes at " + offset);
    }
    FileChannel file;
    try {
      file = FileChannel.open(pathOf(key), READ);
    } catch (NoSuchFileException e) {
      throw new ObjectNotFoundException(uri(key));
    }
    file.position(offset);
    return BoundedInputStream.builder().setInputStream(Channels.newInputStream(file)).setMaxCount(length).get();
  }

  @Override
  public boolean exists(String key) {
    return Files.isRegularFile(pathOf(key));
  }

  @Override
  public void forEach(String keyPrefix, ObjectVisitor visitor) throws IOException {
    visitFiles(keyPrefix, false, visitor);
  }

  @Override
  public List<String> folders(String keyPrefix) throws IOException {
    Path folder = keyPrefix.isEmpty() ? root : pathOf(keyPrefix.substring(0, keyPrefix.length() - 1));
    List<String> folders = new ArrayList<>();
    try (var entries = Files.list(folder)) {
      for (Path entry : (Iterable<Path>) entries::iterator) {
        if (Files.isDirectory(entry, LinkOption.NOFOLLOW_LINKS)) {
          folders.add(keyOf(entry) + "/");
        }
      }
    } catch (NoSuchFileException e) {
      return List.of();
    }
    folders.sort(Comparator.naturalOrder());
    return folders;
  }

  @Override
  public void delete(List<String> keys) throws IOException {
    for (String key : keys) {
      Files.deleteIfExists(pathOf(key));
    }
  }

  /** The partial files of uploads, by the key they would be renamed to. */
  @Override
  public List<StoredObject> listUnfinished(String keyPrefix) throws IOException {
    List<StoredObject> objects = new ArrayList<>();
    visitFiles(keyPrefix, true, objects::add);
    objects.sort(Comparator.comparing(StoredObject::key));
    return objects;
  }

  @Override
  public int deleteUnfinished(String key, Instant before) throws IOException {
    Path target = pathOf(key);
    int deleted = 0;
    try (var partials = Files.newDirectoryStream(target.getParent(), "." + target.getFileName() + PARTIAL_MARKER + "*")) {
      for (Path partial : partials) {
        try {
          if (Files.getLastModifiedTime(partial, LinkOption.NOFOLLOW_LINKS).toInstant().isBefore(before)
              && Files.deleteIfExists(partial)) {
            deleted++;
          }
        } catch (NoSuchFileException committedMeanwhile) {
          // renamed into place or aborted between the listing and here
        }
      }
    } catch (NoSuchFileException e) {
      return 0;
    }
    return deleted;
  }

  /** Depth first: a folder's files all come before the next folder's. */
  private void visitFiles(String keyPrefix, boolean partial, ObjectVisitor visitor) throws IOException {
    walk(keyPrefix, new PrefixVisitor() {
      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) throws IOException {
        if (attributes.isRegularFile() && isPartial(file) == partial) {
          String key = partial ? committedKeyOf(file) : keyOf(file);
          if (key != null && key.startsWith(keyPrefix)) {
            visitor.visit(new StoredObject(key, attributes.size(), attributes.lastModifiedTime().toInstant()));
          }
        }
        return FileVisitResult.CONTINUE;
      }
    });
  }

  /** The key a partial file {@code .<name>.partial-<random>} commits to; null for a stray name. */
  private String committedKeyOf(Path partial) {
    String name = partial.getFileName().toString();
    int marker = name.lastIndexOf(PARTIAL_MARKER);
    return marker > 1 ? keyOf(partial.resolveSibling(name.substring(1, marker))) : null;
  }

  /**
   * Also deletes unfinished uploads under the prefix, whose uploader could only fail now. Folders
   * inside the prefix go once empty; the ones above it stay, as a concurrent upload of another
   * checkpoint may be about to write into them.
   */
  @Override
  public void deleteAll(String keyPrefix) throws IOException {
    walk(keyPrefix, new PrefixVisitor() {
      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) throws IOException {
        if (keyOf(file).startsWith(keyPrefix)) {
          Files.deleteIfExists(file);
        }
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult postVisitDirectory(Path directory, IOException e) throws IOException {
        if (e != null && !(e instanceof NoSuchFileException)) {
          throw e;
        }
        if (!directory.equals(root) && (keyOf(directory) + "/").startsWith(keyPrefix)) {
          try {
            Files.deleteIfExists(directory);
          } catch (DirectoryNotEmptyException stillInUse) {
            // something was written into it meanwhile
          }
        }
        return FileVisitResult.CONTINUE;
      }
    });
  }

  /** Writes, reads back and deletes a probe object through the same path uploads take. */
  @Override
  public void check() throws StorageUnavailableException {
    String probeKey = CHECK_PROBE_PREFIX + randomName();
    byte[] probe = ("written by stasis to check " + root).getBytes(StandardCharsets.UTF_8);
    try {
      createFolders(root);
      put(probeKey, probe);
      byte[] readBack = read(probeKey);
      Files.delete(pathOf(probeKey));
      if (!Arrays.equals(readBack, probe)) {
        throw new StorageUnavailableException(
            "filesystem storage " + root + " returned other bytes than were written to it");
      }
    } catch (StorageUnavailableException e) {
      throw e;
    } catch (IOException e) {
      throw new StorageUnavailableException(
          "filesystem storage " + root + " is not writable: " + reason(e), e);
    }
  }

  @Override
  public String uri(String key) {
    return "file://" + pathOf(key);
  }

  /** Nothing to release: every upload and stream owns its own file handle. */
  @Override
  public void close() {}

  private Path pathOf(String key) {
    boolean relative = !key.isEmpty() && !key.startsWith("/")
        && Arrays.stream(key.split("/")).noneMatch(s -> s.isEmpty() || s.equals(".") || s.equals(".."));
    if (!relative) {
      throw new IllegalArgumentException("object key '" + key + "' is not a relative path of plain names");
    }
    return root.resolve(key);
  }

  /** Creates {@code folder} and the missing folders above it; those at or under the root get {@link #FOLDER_MODE}. */
  private void createFolders(Path folder) throws IOException {
    if (Files.isDirectory(folder)) {
      return;
    }
    createFolders(folder.getParent());
    try {
      Files.createDirectory(folder);
    } catch (FileAlreadyExistsException e) {
      if (Files.isDirectory(folder)) {
        return; // made meanwhile by a concurrent upload
      }
      throw e;
    }
    if (folder.startsWith(root)) {
      setMode(folder, FOLDER_MODE);
    }
  }

  /** Sets the permission bits and keeps setuid, setgid and sticky (Java's PosixFilePermission cannot). */
  private static void setMode(Path path, int mode) throws IOException {
    int current = (Integer) Files.getAttribute(path, "unix:mode");
    Files.setAttribute(path, "unix:mode", (current & SPECIAL_BITS) | mode);
  }

  private static String randomName() {
    return Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36);
  }

  private String keyOf(Path path) {
    return root.relativize(path).toString();
  }

  private static boolean isPartial(Path file) {
    String name = file.getFileName().toString();
    return name.startsWith(".") && name.contains(PARTIAL_MARKER);
  }

  /** Walks the deepest folder that holds every key starting with the prefix, if it exists. */
  private void walk(String keyPrefix, PrefixVisitor visitor) throws IOException {
    int lastSlash = keyPrefix.lastIndexOf('/');
    Path base = lastSlash <= 0 ? root : pathOf(keyPrefix.substring(0, lastSlash));
    if (Files.isDirectory(base)) {
      Files.walkFileTree(base, visitor);
    }
  }

  private abstract static class PrefixVisitor extends SimpleFileVisitor<Path> {
    // A concurrent deleteAll may remove files while this walk passes them.
    @Override
    public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
      if (e instanceof NoSuchFileException) {
        return FileVisitResult.CONTINUE;
      }
      throw e;
    }
  }

  /** Says what went wrong in words, where Java's file exceptions often carry just a path. */
  private static String reason(IOException e) {
    if (e instanceof AccessDeniedException) {
      return "permission denied on " + ((FileSystemException) e).getFile();
    }
    if (e instanceof FileAlreadyExistsException) {
      return ((FileSystemException) e).getFile() + " exists and is not a directory";
    }
    if (e instanceof NoSuchFileException) {
      return ((FileSystemException) e).getFile() + " does not exist";
    }
    if (e instanceof FileSystemException && ((FileSystemException) e).getReason() != null) {
      return ((FileSystemException) e).getReason() + " (" + ((FileSystemException) e).getFile() + ")";
    }
    return e.toString();
  }

  /** Writes to a hidden temporary file that commit renames into place. */
  private final class FileUpload implements ObjectUpload {
    private final Path partial;
    private final Path target;
    private final FileChannel channel;
    private final OutputStream stream;
    private final UploadState state;

    FileUpload(Path partial, Path target, FileChannel channel) {
      this.partial = partial;
      this.target = target;
      this.channel = channel;
      this.state = new UploadState("uploading " + target);
      this.stream = new BufferedOutputStream(Channels.newOutputStream(channel), BUFFER_SIZE) {
        @Override
        public synchronized void write(int b) throws IOException {
          state.requireOpen();
          super.write(b);
        }

        @Override
        public synchronized void write(byte[] bytes, int offset, int length) throws IOException {
          state.requireOpen();
          super.write(bytes, offset, length);
        }

        // Only commit() or abort() end the upload; closing the stream must not lose the file.
        @Override
        public void close() throws IOException {
          flush();
        }
      };
    }

    @Override
    public OutputStream stream() {
      return stream;
    }

    @Override
    public long commit() throws IOException {
      state.requireOpen();
      try {
        stream.flush();
        // The data must be on disk before the rename can make it visible.
        channel.force(true);
        long size = channel.size();
        channel.close();
        Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE);
        syncDirectory(target.getParent());
        state.committed();
        return size;
      } catch (IOException e) {
        abort();
        throw e;
      }
    }

    @Override
    public void abort() {
      if (!state.abort()) {
        return;
      }
      try {
        channel.close();
        Files.deleteIfExists(partial);
      } catch (IOException e) {
        LOG.warn("could not delete unfinished upload {}: {}", partial, e.toString());
      }
    }

    // The rename itself only survives a crash once the folder is synced.
    private void syncDirectory(Path directory) throws IOException {
      try (FileChannel folder = FileChannel.open(directory, READ)) {
        folder.force(true);
      }
    }
  }
}
