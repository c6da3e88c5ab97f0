package dev.stasis.testing;

import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.ChunkNamer;
import dev.stasis.storage.ObjectStore;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;

/**
 * Deduplicated checkpoints in a store, laid out as docs/dedup.md says, for tests of what reads or
 * removes them (the garbage collector): chunks under the namespace's chunk folder, named with the
 * real {@link ChunkNamer}, the archive, the chunk index written with {@link ChunkIndex.Writer}, and
 * the v2 manifest last. Chunks are stored as they are (no compression or encryption: the collector
 * never opens one). Not the agent's write path, which cuts CRIU's images; only its result.
 */
public final class DeduplicatedCheckpoints {
  private static final byte[] CHUNK_KEY = "chunk key of the tests, 32 bytes".getBytes(StandardCharsets.US_ASCII);
  private static final HexFormat HEX = HexFormat.of();

  private DeduplicatedCheckpoints() {}

  /** What was written: the checkpoint, the names of its chunks in order, the bytes of the image they make. */
  public record Written(ArchiveLayout layout, List<String> chunks, long imageBytes, long archiveBytes) {}

  /** The chunk's name in {@code namespace}: what an agent of the namespace would name it. */
  public static String name(String namespace, byte[] chunk) {
    return ChunkNamer.forNamespace(CHUNK_KEY, namespace).name(chunk, 0, chunk.length);
  }

  /** The names of the chunks stored for {@code namespace}: the one listing an agent takes when it starts. */
  public static Set<String> storedChunks(ObjectStore store, String namespace) throws IOException {
    Set<String> names = new HashSet<>();
    store.forEach(ArchiveLayout.chunkPrefix(namespace), o -> ArchiveLayout.ofChunkKey(o.key())
        .ifPresent(c -> names.add(c.name())));
    return names;
  }

  /**
   * Stores a checkpoint of {@code layout} whose one memory image is {@code chunks}, uploading only
   * those not in {@code present} (what the writer listed when it started); the manifest comes last.
   */
  public static Written write(ObjectStore store, ArchiveLayout layout, List<byte[]> chunks, Set<String> present)
      throws IOException {
    String namespace = layout.namespace();
    ByteArrayOutputStream index = new ByteArrayOutputStream();
    ChunkIndex.Writer writer = new ChunkIndex.Writer(index);
    writer.startImage("pages-1.img");
    List<String> names = new ArrayList<>();
    long imageBytes = 0;
    for (byte[] chunk : chunks) {
      String name = name(namespace, chunk);
      if (!present.contains(name)) {
        store.put(ArchiveLayout.chunkKey(namespace, name), chunk);
      }
      writer.chunk(new ChunkIndex.ChunkRef(name, chunk.length, chunk.length));
      imageBytes += chunk.length;
      names.add(name);
    }
    writer.endImage(imageBytes);
    writer.finish();
    store.put(layout.chunkIndexKey(), index.toByteArray());
    long archiveBytes = complete(store, layout, chunks(layout, index.toByteArray(), imageBytes));
    return new Written(layout, names, imageBytes, archiveBytes);
  }

  /**
   * Stores the archive (the small images) and, last, the v2 manifest of a checkpoint whose chunks
   * and index are stored; the archive's bytes.
   */
  public static long complete(ObjectStore store, ArchiveLayout layout, Manifest.Chunks chunks) throws IOException {
    byte[] archive = ("the small images of " + layout.checkpointName()).getBytes(StandardCharsets.UTF_8);
    store.put(layout.archiveKey(ArchiveCodec.NONE), archive);
    store.put(layout.manifestKey(), manifest(layout, archive, chunks).toJson());
    return archive.length;
  }

  /** The manifest's record of an index stored as {@code index}, of images of {@code imageBytes}. */
  public static Manifest.Chunks chunks(ArchiveLayout layout, byte[] index, long imageBytes) {
    Manifest.Chunks chunks = new Manifest.Chunks();
    chunks.indexKey = layout.chunkIndexKey();
    chunks.indexSha256 = HEX.formatHex(sha256().digest(index));
    chunks.indexBytes = (long) index.length;
    chunks.codec = ArchiveCodec.NONE;
    chunks.encryption = "none";
    chunks.keyId = "chunks-1";
    chunks.imagesBytes = imageBytes;
    return chunks;
  }

  /** A v2 manifest of {@code layout} as the agent writes it, with its archive and chunks. */
  public static Manifest manifest(ArchiveLayout layout, byte[] archive, Manifest.Chunks chunks) {
    Manifest manifest = new Manifest();
    manifest.createdAt = "2026-12-06T02:00:00Z";
    manifest.source = new Manifest.Source();
    manifest.source.namespace = layout.namespace();
    manifest.source.checkpointName = layout.checkpointName();
    manifest.source.checkpointUid = layout.checkpointUid();
    manifest.source.node = "node-a";
    manifest.source.pid = 4242;
    manifest.archive = new Manifest.Archive();
    manifest.archive.key = layout.archiveKey(ArchiveCodec.NONE);
    manifest.archive.codec = ArchiveCodec.NONE;
    manifest.archive.sizeBytes = (long) archive.length;
    manifest.archive.storedBytes = (long) archive.length;
    manifest.archive.sha256 = HEX.formatHex(sha256().digest(archive));
    manifest.chunked(chunks);
    return manifest;
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
