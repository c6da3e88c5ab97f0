package dev.stasis.testing;

import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ChunkKey;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.dedup.ChunkCipher;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.archive.dedup.ChunkLocation;
import dev.stasis.archive.dedup.ChunkNamer;
import dev.stasis.archive.dedup.ChunkObjects;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.StoredObject;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Deduplicated checkpoints in a store, laid out as docs/dedup.md says, for tests of what reads or
 * removes them (the garbage collector): chunks under the namespace's chunk folder, named with the
 * real {@link ChunkNamer}, the archive, the chunk index written with {@link ChunkIndex.Writer}, and
 * the v2 manifest last. Loose chunks are stored as they are (no compression or encryption: the
 * collector never opens one); packed ones ({@link #writePacked}) as the agent stores them
 * ({@link ChunkObjects}), since the collector opens the ones it moves. Not the agent's write path,
 * which cuts CRIU's images; only its result.
 */
public final class DeduplicatedCheckpoints {
  private static final byte[] CHUNK_KEY = "chunk key of the tests, 32 bytes".getBytes(StandardCharsets.US_ASCII);
  /** The chunk key (of every namespace, in these tests) the chunks are named with. */
  public static final ChunkKey KEY = ChunkKey.derived("chunks-1", CHUNK_KEY);
  private static final SecureRandom RANDOM = new SecureRandom();
  /** Where a pack is full: the size the agent's packs aim at (pack-design.md). */
  public static final int PACK_BYTES = 16 << 20;
  private static final HexFormat HEX = HexFormat.of();

  private DeduplicatedCheckpoints() {}

  /** What was written: the checkpoint, the names of its chunks in order, the bytes of the image they make. */
  public record Written(ArchiveLayout layout, List<String> chunks, long imageBytes, long archiveBytes) {}

  /** Where a chunk is stored, as an agent finds it when it starts: loose or in a pack, and its stored length. */
  public record StoredChunk(ChunkLocation location, int storedBytes) {}

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
   * The chunks stored for {@code namespace}, loose and in packs (from their indexes, checked under
   * {@link #KEY}), by name: what an agent finds when it starts.
   */
  public static Map<String, StoredChunk> storedAnywhere(ObjectStore store, String namespace) throws IOException {
    Map<String, StoredChunk> found = new HashMap<>();
    for (StoredObject object : store.list(ArchiveLayout.chunkPrefix(namespace))) {
      ArchiveLayout.ofChunkKey(object.key()).ifPresent(c -> found.put(c.name(), new StoredChunk(ChunkLocation.LOOSE,
          (int) object.sizeBytes())));
    }
    for (PackIndex index : packIndexes(store, namespace)) {
      for (PackIndex.Entry e : index.entries()) {
        found.put(e.name(), new StoredChunk(ChunkLocation.inPack(index.packId(), e.offset()), e.storedBytes()));
      }
    }
    return found;
  }

  /** The ids of the namespace's stored packs (the pack objects, with or without an index). */
  public static Set<String> packIds(ObjectStore store, String namespace) throws IOException {
    Set<String> ids = new HashSet<>();
    for (StoredObject object : store.list(ArchiveLayout.packPrefix(namespace))) {
      ArchiveLayout.ofPackKey(object.key()).filter(p -> !p.index()).ifPresent(p -> ids.add(p.packId()));
    }
    return ids;
  }

  /** {@code count} chunks of 64 KiB of random bytes (which do not compress). */
  public static List<byte[]> randomChunks(Random random, int count) {
    return randomChunks(random, count, 64 << 10);
  }

  public static List<byte[]> randomChunks(Random random, int count, int bytes) {
    List<byte[]> chunks = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      byte[] chunk = new byte[bytes];
      random.nextBytes(chunk);
      chunks.add(chunk);
    }
    return chunks;
  }

  /** The namespace's pack indexes, each checked under {@link #KEY}. */
  public static List<PackIndex> packIndexes(ObjectStore store, String namespace) throws IOException {
    return packIndexes(store, namespace, KEY);
  }

  /** The namespace's pack indexes, each checked under {@code key}. */
  public static List<PackIndex> packIndexes(ObjectStore store, String namespace, ChunkKey key) throws IOException {
    List<PackIndex> indexes = new ArrayList<>();
    for (StoredObject object : store.list(ArchiveLayout.packPrefix(namespace))) {
      var pack = ArchiveLayout.ofPackKey(object.key());
      if (pack.isPresent() && pack.get().index()) {
        indexes.add(PackIndex.read(PackIndex.Key.forNamespace(key.bytes(), key.keyId(), namespace),
            pack.get().packId(), store.read(object.key())));
      }
    }
    return indexes;
  }

  /**
   * The chunk {@code name} of {@code namespace} read back as a restore resolves it by name: found
   * in a pack index, its range fetched and opened (checked against the name); loose when no pack has it.
   */
  public static byte[] readChunk(ObjectStore store, String namespace, String name, int bytes, boolean sealed)
      throws IOException {
    return readChunk(store, namespace, name, bytes, KEY, sealed);
  }

  /** {@link #readChunk} of chunks made with {@code key}. */
  public static byte[] readChunk(ObjectStore store, String namespace, String name, int bytes, ChunkKey key,
      boolean sealed) throws IOException {
    ChunkObjects objects = ChunkObjects.forNamespace(key, namespace, sealed, false);
    for (PackIndex index : packIndexes(store, namespace, key)) {
      for (PackIndex.Entry e : index.entries()) {
        if (e.name().equals(name)) {
          byte[] pack = store.read(ArchiveLayout.packKey(namespace, index.packId()));
          return objects.open(name, Arrays.copyOfRange(pack, (int) e.offset(), (int) e.offset() + e.storedBytes()),
              bytes);
        }
      }
    }
    return store.read(ArchiveLayout.chunkKey(namespace, name));
  }

  /**
   * Stores a checkpoint of {@code layout} whose one memory image is {@code chunks} as an agent
   * does with packs: the chunks not in {@code present} as new packs of {@link ChunkObjects}
   * (compressed, sealed when {@code sealed}; a new pack begins at {@link #PACK_BYTES}), each pack
   * before its index; a version 2 chunk index with each chunk's location; the archive, and the
   * manifest last.
   */
  public static Written writePacked(ObjectStore store, ArchiveLayout layout, List<byte[]> chunks,
      Map<String, StoredChunk> present, boolean sealed) throws IOException {
    return writePacked(store, layout, chunks, present, KEY, sealed);
  }

  /** {@link #writePacked} with the chunk key {@code key}, as an agent granted it. */
  public static Written writePacked(ObjectStore store, ArchiveLayout layout, List<byte[]> chunks,
      Map<String, StoredChunk> present, ChunkKey key, boolean sealed) throws IOException {
    String namespace = layout.namespace();
    ChunkObjects objects = ChunkObjects.forNamespace(key, namespace, sealed, true);
    Map<String, StoredChunk> stored = new HashMap<>(present);
    ChunkStore packs = new ChunkStore() {
      String packId = newPackId();
      final ByteArrayOutputStream pack = new ByteArrayOutputStream();
      final List<PackIndex.Entry> entries = new ArrayList<>();

      @Override
      public ChunkIndex.ChunkRef store(byte[] chunk) throws IOException {
        String name = objects.name(chunk, 0, chunk.length);
        StoredChunk where = stored.get(name);
        if (where == null) {
          byte[] object = objects.object(name, chunk, 0, chunk.length);
          where = new StoredChunk(ChunkLocation.inPack(packId, pack.size()), object.length);
          entries.add(new PackIndex.Entry(name, pack.size(), object.length, chunk.length));
          pack.writeBytes(object);
          stored.put(name, where);
          if (pack.size() >= PACK_BYTES) {
            finish();
          }
        }
        return new ChunkIndex.ChunkRef(name, chunk.length, where.storedBytes(), where.location());
      }

      @Override
      public void finish() throws IOException {
        if (!entries.isEmpty()) {
          store.put(ArchiveLayout.packKey(namespace, packId), pack.toByteArray());
          store.put(ArchiveLayout.packIndexKey(namespace, packId), new PackIndex(key.keyId(), packId, entries)
              .encode(PackIndex.Key.forNamespace(key.bytes(), key.keyId(), namespace)));
          packId = newPackId();
          pack.reset();
          entries.clear();
        }
      }
    };
    return write(store, layout, chunks, packs, recorded -> {
      recorded.codec = ArchiveCodec.ZSTD;
      recorded.encryption = sealed ? ChunkCipher.ALGORITHM : "none";
    });
  }

  /** Where a test checkpoint's chunks go: each stored (or found stored), then whatever is still open. */
  private interface ChunkStore {
    ChunkIndex.ChunkRef store(byte[] chunk) throws IOException;

    void finish() throws IOException;
  }

  /**
   * Stores {@code chunks} through {@code chunkStore} while writing the chunk index of their one
   * image, then the index, the archive and the manifest (recorded as {@code recording} says) last.
   */
  private static Written write(ObjectStore store, ArchiveLayout layout, List<byte[]> chunks, ChunkStore chunkStore,
      Consumer<Manifest.Chunks> recording) throws IOException {
    ByteArrayOutputStream index = new ByteArrayOutputStream();
    ChunkIndex.Writer writer = new ChunkIndex.Writer(index);
    writer.startImage("pages-1.img");
    List<String> names = new ArrayList<>();
    long imageBytes = 0;
    for (byte[] chunk : chunks) {
      ChunkIndex.ChunkRef ref = chunkStore.store(chunk);
      writer.chunk(ref);
      imageBytes += chunk.length;
      names.add(ref.name());
    }
    chunkStore.finish();
    writer.endImage(imageBytes);
    writer.finish();
    store.put(layout.chunkIndexKey(), index.toByteArray());
    Manifest.Chunks recorded = chunks(layout, index.toByteArray(), imageBytes);
    recording.accept(recorded);
    long archiveBytes = complete(store, layout, recorded);
    return new Written(layout, names, imageBytes, archiveBytes);
  }

  private static String newPackId() {
    byte[] id = new byte[16];
    RANDOM.nextBytes(id);
    return HEX.formatHex(id);
  }

  /**
   * Stores a checkpoint of {@code layout} whose one memory image is {@code chunks}, uploading only
   * those not in {@code present} (what the writer listed when it started); the manifest comes last.
   */
  public static Written write(ObjectStore store, ArchiveLayout layout, List<byte[]> chunks, Set<String> present)
      throws IOException {
    String namespace = layout.namespace();
    ChunkStore loose = new ChunkStore() {
      @Override
      public ChunkIndex.ChunkRef store(byte[] chunk) throws IOException {
        String name = name(namespace, chunk);
        if (!present.contains(name)) {
          store.put(ArchiveLayout.chunkKey(namespace, name), chunk);
        }
        return new ChunkIndex.ChunkRef(name, chunk.length, chunk.length);
      }

      @Override
      public void finish() {}
    };
    return write(store, layout, chunks, loose, recorded -> {});
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
