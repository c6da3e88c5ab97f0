package dev.stasis.storage;

import java.io.IOException;
import java.io.InputStream;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * An object store holding checkpoint archives and manifests. Keys are '/'-separated relative
 * paths ({@code <namespace>/<checkpoint>-<uid>/archive.tar.zst}); implementations add their own
 * prefix. Nothing written through {@link #upload} is visible before {@link ObjectUpload#commit()}.
 */
public interface ObjectStore extends AutoCloseable {
  /**
   * The key prefix of the probe objects {@link #check} writes and deletes again; one is left behind
   * only when the store failed between the two, and the garbage collector removes it.
   */
  String CHECK_PROBE_PREFIX = ".stasis-check-";

  /** Starts a streamed upload of one object; abort or close it if anything goes wrong. */
  ObjectUpload upload(String key) throws IOException;

  /** Writes a small object in one call (manifests); it appears whole or not at all. */
  void put(String key, byte[] content) throws IOException;

  /** Streams an object's bytes. @throws ObjectNotFoundException when there is no such object. */
  InputStream open(String key) throws IOException;

  /** Reads a small object whole. @throws ObjectNotFoundException when there is no such object. */
  byte[] read(String key) throws IOException;

  /**
   * Streams {@code length} bytes of an object from {@code offset} (one ranged GET): a span of a pack
   * read chunk by chunk. The stream ends early when the object does.
   *
   * @throws ObjectNotFoundException when there is no such object
   */
  InputStream openRange(String key, long offset, long length) throws IOException;

  /**
   * Reads {@code length} bytes of an object from {@code offset} (one ranged GET): chunks in a pack.
   *
   * @throws ObjectNotFoundException when there is no such object
   * @throws IOException when the object ends before {@code offset + length}
   */
  default byte[] readRange(String key, long offset, int length) throws IOException {
    try (InputStream in = openRange(key, offset, length)) {
      byte[] bytes = in.readNBytes(length);
      if (bytes.length != length) {
        throw new IOException(uri(key) + " gave " + bytes.length + " bytes from " + offset + " where " + length
            + " were asked for: it ends early");
      }
      return bytes;
    }
  }

  boolean exists(String key) throws IOException;

  /** Every committed object whose key starts with {@code keyPrefix}, in key order. */
  default List<StoredObject> list(String keyPrefix) throws IOException {
    List<StoredObject> objects = new ArrayList<>();
    forEach(keyPrefix, objects::add);
    objects.sort(Comparator.comparing(StoredObject::key));
    return objects;
  }

  /**
   * Calls {@code visitor} with every committed object whose key starts with {@code keyPrefix} as
   * the listing is read, page by page, so that a bucket of any size is never held in memory. The
   * objects under one folder-like prefix (up to a '/') come one after another: S3 lists in key
   * order, a folder is walked whole before the next.
   */
  void forEach(String keyPrefix, ObjectVisitor visitor) throws IOException;

  /**
   * The folder-like prefixes directly under {@code keyPrefix} (empty or ending in '/'), each ending
   * in '/', in key order: S3's common prefixes for the delimiter '/', a directory's subdirectories.
   * Lists a namespace's checkpoints without the many objects inside them.
   */
  List<String> folders(String keyPrefix) throws IOException;

  /** What {@link #forEach} calls for each object; it may act on the store (delete what it saw). */
  @FunctionalInterface
  interface ObjectVisitor {
    void visit(StoredObject object) throws IOException;
  }

  /**
   * Every upload under {@code keyPrefix} that was started and neither committed nor aborted (S3
   * multipart uploads, partial files), as the key it would commit to, its size so far where the
   * store knows it cheaply (0 otherwise) and the time it began or last grew. Uploaders that died
   * leave these behind; {@link #deleteAll} removes them.
   */
  List<StoredObject> listUnfinished(String keyPrefix) throws IOException;

  /**
   * Removes the unfinished uploads to exactly {@code key} that began or last grew before {@code before}
   * ({@link #listUnfinished}'s time), leaving younger ones and the committed object alone.
   *
   * @return how many it removed
   */
  int deleteUnfinished(String key, Instant before) throws IOException;

  /**
   * Deletes every object whose key starts with {@code keyPrefix}, and every unfinished upload;
   * missing objects are fine.
   */
  void deleteAll(String keyPrefix) throws IOException;

  /** Deletes exactly these objects (missing ones are fine), in as few requests as the store allows. */
  void delete(List<String> keys) throws IOException;

  /**
   * Checks for real that objects can be written, read and deleted here (bucket exists, credentials
   * work, path writable). @throws StorageUnavailableException saying what is wrong.
   */
  void check() throws StorageUnavailableException;

  /** A URI naming the object for people, e.g. {@code s3://bucket/prefix/key} or {@code file:///path/key}. */
  String uri(String key);

  @Override
  void close();
}
