package dev.stasis.operator.retention;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.ManifestException;
import dev.stasis.archive.dedup.ChunkIndex;
import dev.stasis.storage.ObjectNotFoundException;
import dev.stasis.storage.ObjectStore;
import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * The mark of a namespace's chunk collection: every chunk name that the chunk index of a manifest
 * in the namespace lists (completed, retained, or orphaned and not yet collected: any manifest
 * present). Taken while the namespace's {@link ChunkSweepLock} is held, so no manifest can appear
 * after it. Each index is read as a stream and checked against the sha256 its manifest records;
 * a manifest or an index that cannot be read as one refuses the whole mark
 * ({@link ChunkReferencesInvalid}), since what it refers to is unknown and nothing may be swept.
 *
 * <p>It holds the first 64 bits of each distinct name, in an open-addressing table at most half
 * full: 8 to 16 bytes a name, 8 MiB for the 524,288 chunks of a 64 GiB process at 128 KiB (24 MiB
 * for a moment while the table doubles), however many checkpoints share them. Two names sharing
 * 64 bits can only keep a chunk, never delete one.
 */
final class ChunkMark {
  private final LongSet names = new LongSet();
  private int indexes;

  /** A manifest or chunk index of the namespace that cannot be trusted: the namespace's sweep stops. */
  static final class ChunkReferencesInvalid extends Exception {
    ChunkReferencesInvalid(String message) {
      super(message);
    }
  }

  private ChunkMark() {}

  /** Reads the references of every checkpoint of {@code namespace} in {@code store}. */
  static ChunkMark of(ObjectStore store, String namespace) throws IOException, ChunkReferencesInvalid {
    ChunkMark mark = new ChunkMark();
    for (String folder : store.folders(namespace + "/")) {
      Optional<ArchiveLayout> layout = ArchiveLayout.ofKey(folder + ArchiveLayout.MANIFEST_FILE_NAME);
      if (layout.isEmpty() || !layout.get().prefix().equals(folder)) {
        continue; // the chunks' own folder, or not laid out by Stasis
      }
      for (String manifestKey : manifestKeys(store, layout.get())) {
        mark.add(store, manifestKey);
      }
    }
    return mark;
  }

  boolean contains(String chunkName) {
    return names.contains(chunkName);
  }

  /** Distinct names held (up to 64-bit prefixes that coincide). */
  int names() {
    return names.size();
  }

  int indexes() {
    return indexes;
  }

  /** The checkpoint's manifest; a pod checkpoint's are its containers'. */
  private static List<String> manifestKeys(ObjectStore store, ArchiveLayout layout) throws IOException {
    List<String> keys = new ArrayList<>(List.of(layout.manifestKey()));
    for (String container : store.folders(layout.prefix() + "containers/")) {
      keys.add(container + ArchiveLayout.MANIFEST_FILE_NAME);
    }
    return keys;
  }

  private void add(ObjectStore store, String manifestKey) throws IOException, ChunkReferencesInvalid {
    Manifest manifest;
    try {
      manifest = Manifest.fromJson(store.read(manifestKey));
    } catch (ObjectNotFoundException e) {
      return; // not complete (or deleted meanwhile): it refers to nothing
    } catch (ManifestException e) {
      throw new ChunkReferencesInvalid("manifest " + store.uri(manifestKey) + " cannot be read (" + e.getMessage()
          + "), so the chunks it may refer to are unknown");
    }
    if (!manifest.isChunked()) {
      return;
    }
    String indexKey = manifest.chunks.indexKey;
    MessageDigest sha256 = sha256();
    long[] bytes = {0};
    try (InputStream in = store.open(indexKey)) {
      InputStream counted = new FilterInputStream(new DigestInputStream(in, sha256)) {
        @Override
        public int read() throws IOException {
          int b = super.read();
          bytes[0] += b < 0 ? 0 : 1;
          return b;
        }

        @Override
        public int read(byte[] buffer, int offset, int length) throws IOException {
          int n = super.read(buffer, offset, length);
          bytes[0] += Math.max(n, 0);
          return n;
        }
      };
      ChunkIndex.read(new BufferedInputStream(counted, 1 << 16),
          (image, chunk) -> names.add(chunk.name()));
    } catch (ObjectNotFoundException e) {
      if (!store.exists(manifestKey)) {
        return; // the checkpoint was deleted meanwhile
      }
      throw new ChunkReferencesInvalid("manifest " + store.uri(manifestKey) + " names the chunk index "
          + store.uri(indexKey) + ", which is missing");
    } catch (ArchiveIntegrityException e) {
      throw new ChunkReferencesInvalid("the chunk index " + store.uri(indexKey) + " of manifest "
          + store.uri(manifestKey) + " is not valid: " + e.getMessage());
    }
    String actual = HexFormat.of().formatHex(sha256.digest());
    if (!actual.equals(manifest.chunks.indexSha256) || bytes[0] != manifest.chunks.indexBytes) {
      throw new ChunkReferencesInvalid("the chunk index " + store.uri(indexKey) + " is " + bytes[0] + " bytes with"
          + " sha256 " + actual + ", but manifest " + store.uri(manifestKey) + " records " + manifest.chunks.indexBytes
          + " bytes with sha256 " + manifest.chunks.indexSha256 + ": it was altered or replaced");
    }
    indexes++;
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
