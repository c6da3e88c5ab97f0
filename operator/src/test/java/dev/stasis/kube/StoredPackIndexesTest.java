package dev.stasis.kube;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.dedup.PackIndex;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.storage.ObjectStore;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A namespace's pack indexes read from a real filesystem store, as writers and restores read them. */
class StoredPackIndexesTest {
  static final String NAMESPACE = "sims";
  static final PackIndex.Key KEY = PackIndex.Key.forNamespace(new byte[32], "k1", NAMESPACE);
  static final HexFormat HEX = HexFormat.of();

  @TempDir Path root;
  FileSystemObjectStore files;

  @BeforeEach
  void open() {
    files = new FileSystemObjectStore(root);
  }

  @AfterEach
  void close() {
    files.close();
  }

  @Test
  void indexesAreReadSeveralAtOnceAndHandedOnInKeyOrder() throws Exception {
    List<String> packIds = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      packIds.add(storePack(1000 + i));
    }
    packIds.sort(null);
    // Each index read waits until four are under way: read one at a time, the first would give up.
    CountDownLatch reading = new CountDownLatch(4);
    ObjectStore overlapping = readingIndexes(() -> {
      reading.countDown();
      if (!reading.await(10, TimeUnit.SECONDS)) {
        throw new IOException("pack indexes were read one at a time");
      }
    });

    List<String> visited = new ArrayList<>();
    List<StoredPackIndexes.Untrusted> untrusted = StoredPackIndexes.forEach(overlapping, NAMESPACE, KEY,
        index -> visited.add(index.packId()));

    assertThat(visited).containsExactlyElementsOf(packIds);
    assertThat(untrusted).isEmpty();
  }

  @Test
  void untrustedIndexesAreNamedInKeyOrderAndTheRestAreStillHandedOn() throws Exception {
    List<String> packIds = new ArrayList<>();
    for (int i = 0; i < 12; i++) {
      packIds.add(storePack(500));
    }
    packIds.sort(null);
    String altered = packIds.get(7);
    byte[] index = files.read(ArchiveLayout.packIndexKey(NAMESPACE, altered));
    index[index.length - 1] ^= 1;
    files.put(ArchiveLayout.packIndexKey(NAMESPACE, altered), index);
    String cutShort = packIds.get(2);
    files.put(ArchiveLayout.packKey(NAMESPACE, cutShort), new byte[499]);

    List<String> visited = new ArrayList<>();
    List<StoredPackIndexes.Untrusted> untrusted = StoredPackIndexes.forEach(files, NAMESPACE, KEY,
        i -> visited.add(i.packId()));

    assertThat(untrusted).extracting(StoredPackIndexes.Untrusted::uri).containsExactly(
        files.uri(ArchiveLayout.packIndexKey(NAMESPACE, cutShort)), files.uri(ArchiveLayout.packIndexKey(NAMESPACE, altered)));
    assertThat(untrusted.get(0).reason()).isEqualTo("it describes a pack of 500 bytes, and the pack is 499 bytes");
    assertThat(untrusted.get(1).reason()).contains("not authentic");
    List<String> trusted = new ArrayList<>(packIds);
    trusted.removeAll(List.of(altered, cutShort));
    assertThat(visited).containsExactlyElementsOf(trusted);
  }

  /** A pack of one chunk of {@code storedBytes} and its index, as a writer stores them; its id. */
  String storePack(int storedBytes) throws IOException {
    byte[] id = new byte[16];
    byte[] name = new byte[32];
    ThreadLocalRandom.current().nextBytes(id);
    ThreadLocalRandom.current().nextBytes(name);
    String packId = HEX.formatHex(id);
    PackIndex index = new PackIndex(KEY.keyId(), packId,
        List.of(new PackIndex.Entry(HEX.formatHex(name), 0, storedBytes, storedBytes)));
    files.put(ArchiveLayout.packKey(NAMESPACE, packId), new byte[storedBytes]);
    files.put(ArchiveLayout.packIndexKey(NAMESPACE, packId), index.encode(KEY));
    return packId;
  }

  interface BeforeRead {
    void run() throws Exception;
  }

  /** The filesystem store, with {@code beforeRead} run on the reading thread before each pack index is read. */
  ObjectStore readingIndexes(BeforeRead beforeRead) {
    return (ObjectStore) Proxy.newProxyInstance(ObjectStore.class.getClassLoader(), new Class<?>[] {ObjectStore.class},
        (proxy, method, args) -> {
          if (method.getName().equals("read") && args.length == 1 && ((String) args[0]).endsWith(".idx")) {
            beforeRead.run();
          }
          try {
            return method.invoke(files, args);
          } catch (InvocationTargetException e) {
            throw e.getCause();
          }
        });
  }
}
