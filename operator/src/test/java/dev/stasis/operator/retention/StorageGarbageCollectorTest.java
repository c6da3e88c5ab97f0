package dev.stasis.operator.retention;

import static dev.stasis.api.CheckpointStorageSpec.DEFAULT_MAX_UNUSED_PERCENT;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.ArchiveLayout;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.ObjectUpload;
import dev.stasis.storage.S3Config;
import dev.stasis.storage.S3ObjectStore;
import dev.stasis.storage.StoredObject;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.S3Server;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The garbage collector on the real object stores: a directory and an S3 server (s3proxy). */
class StorageGarbageCollectorTest {
  static final String LIVE = "11111111-1111-1111-1111-111111111111";
  static final String GONE = "22222222-2222-2222-2222-222222222222";
  static final String RETAINED = "33333333-3333-3333-3333-333333333333";
  static final String CRASHED = "44444444-4444-4444-4444-444444444444";
  static final Duration GRACE = Duration.ofHours(1);
  static final String THIS_CLUSTER = "0e9c2f3a-this-cluster";

  /** For stores without chunks: asking for a namespace's chunk lock is a test failure. */
  static final StorageGarbageCollector.ChunkLocks NO_CHUNKS = namespace -> {
    throw new AssertionError("no chunks were stored, yet the lock of namespace " + namespace + " was asked for");
  };
  static final ChunkKeys NO_KEYS = (namespace, keyId) -> {
    throw new AssertionError("no packs were stored, yet key " + keyId + " of namespace " + namespace + " was asked for");
  };

  @TempDir Path root;

  @Test
  void fileSystem() throws IOException {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      removesOnlyWhatNoCheckpointOwns(store);
    }
  }

  @Test
  void s3() throws Exception {
    try (S3Server server = S3Server.start()) {
      server.createBucket("checkpoints");
      try (ObjectStore store = s3Store(server, server.endpoint())) {
        removesOnlyWhatNoCheckpointOwns(store);
      }
    }
  }

  /** The bucket "checkpoints" of {@code server}, reached at {@code endpoint} (the server's, or a proxy's). */
  static ObjectStore s3Store(S3Server server, String endpoint) {
    return new S3ObjectStore(new S3Config(endpoint, "checkpoints", "stasis", null, true, server.accessKey(),
        server.secretKey()), S3ObjectStore.MIN_PART_SIZE);
  }

  private static <T> int indexOf(List<T> list, java.util.function.Predicate<T> matches) {
    for (int i = 0; i < list.size(); i++) {
      if (matches.test(list.get(i))) {
        return i;
      }
    }
    return -1;
  }

  private static <T> int lastIndexOf(List<T> list, java.util.function.Predicate<T> matches) {
    for (int i = list.size() - 1; i >= 0; i--) {
      if (matches.test(list.get(i))) {
        return i;
      }
    }
    return -1;
  }

  @Test
  void aFileSystemSharedWithAnotherClusterIsLeftAlone() throws IOException {
    try (ObjectStore store = new FileSystemObjectStore(root)) {
      leavesAStorageAnotherClusterUsesAlone(store);
    }
  }

  @Test
  void anS3PrefixSharedWithAnotherClusterIsLeftAlone() throws Exception {
    try (S3Server server = S3Server.start()) {
      server.createBucket("checkpoints");
      try (ObjectStore store = s3Store(server, server.endpoint())) {
        leavesAStorageAnotherClusterUsesAlone(store);
      }
    }
  }

  /**
   * Another cluster's Stasis stores its checkpoints under the same bucket and prefix: this cluster
   * knows none of them, and would delete them all as if deleted. Its mark stops that.
   */
  private void leavesAStorageAnotherClusterUsesAlone(ObjectStore store) throws IOException {
    ArchiveLayout theirs = new ArchiveLayout("jobs", "sim", GONE);
    write(store, theirs.prefix() + "archive.tar.zst", "images of the other cluster's checkpoint");
    write(store, theirs.manifestKey(), "{}");
    StorageGarbageCollector.markUsedBy(store, THIS_CLUSTER);
    StorageGarbageCollector.markUsedBy(store, "7d1f0c55-other-cluster");
    Instant later = Instant.now().plus(Duration.ofDays(1));

    var collected = StorageGarbageCollector.collect(store, THIS_CLUSTER, l -> false, NO_CHUNKS, NO_KEYS, GRACE,
        DEFAULT_MAX_UNUSED_PERCENT, later);

    assertThat(collected.otherClusters()).containsExactly("7d1f0c55-other-cluster");
    assertThat(collected.isEmpty()).isTrue();
    assertThat(store.list(theirs.prefix())).hasSize(2);

    store.deleteAll(StorageGarbageCollector.CLUSTER_MARKERS + "7d1f0c55-other-cluster");
    assertThat(StorageGarbageCollector.collect(store, THIS_CLUSTER, l -> false, NO_CHUNKS, NO_KEYS, GRACE,
        DEFAULT_MAX_UNUSED_PERCENT, later)
        .prefixes())
        .as("once that cluster's mark is gone").containsExactly(theirs.prefix());
  }

  /**
   * The bucket's listing is read page by page and acted on as it comes, not held whole in memory:
   * a deleted checkpoint listed first is removed before the listing's later pages are asked for.
   * 2,001 objects, 1,000 per page; the S3 requests are seen through a proxy.
   */
  @Test
  void theListingIsActedOnPageByPage() throws Exception {
    try (S3Server server = S3Server.start(); FaultInjectingProxy link = FaultInjectingProxy.to(server.endpoint())) {
      server.createBucket("checkpoints");
      try (ObjectStore direct = s3Store(server, server.endpoint()); ObjectStore store = s3Store(server, link.endpoint())) {
        ArchiveLayout gone = new ArchiveLayout("a", "gone", GONE);
        ArchiveLayout live = new ArchiveLayout("b", "live", LIVE);
        write(direct, gone.prefix() + "archive.tar.zst", "deleted checkpoint");
        ExecutorService writers = Executors.newFixedThreadPool(8);
        try {
          List<Future<?>> written = new ArrayList<>();
          for (int i = 0; i < 2000; i++) {
            String key = live.prefix() + "chunk-%04d".formatted(i);
            written.add(writers.submit(() -> {
              write(direct, key, "x");
              return null;
            }));
          }
          for (Future<?> w : written) {
            w.get();
          }
        } finally {
          writers.shutdownNow();
        }

        var collected = StorageGarbageCollector.collect(store, THIS_CLUSTER, l -> l.equals(live), NO_CHUNKS, NO_KEYS,
            GRACE, DEFAULT_MAX_UNUSED_PERCENT, Instant.now().plus(Duration.ofDays(1)));

        assertThat(collected.prefixes()).containsExactly(gone.prefix());
        List<FaultInjectingProxy.Request> requests = link.requests();
        int firstDelete = indexOf(requests, r -> r.method().equals("POST") && r.target().contains("delete"));
        int lastPage = lastIndexOf(requests, r -> r.method().equals("GET") && r.target().contains("continuation-token"));
        assertThat(lastPage).as("the listing has later pages").isPositive();
        assertThat(firstDelete).as("deleted before the last page was read").isBetween(0, lastPage);
      }
    }
  }

  /**
   * Committed objects and unfinished uploads  /**
   * Committed objects and unfinished uploads (an S3 multipart upload, a partial file) alike: a
   * deleted checkpoint's go, a live or retained checkpoint's and foreign keys stay.
   */
  private void removesOnlyWhatNoCheckpointOwns(ObjectStore store) throws IOException {
    ArchiveLayout live = new ArchiveLayout("jobs", "live", LIVE);
    ArchiveLayout gone = new ArchiveLayout("jobs", "sim-20250310100010", GONE);
    ArchiveLayout retained = new ArchiveLayout("jobs", "kept", RETAINED);
    ArchiveLayout crashed = new ArchiveLayout("jobs", "crashed", CRASHED);
    for (ArchiveLayout layout : List.of(live, gone, retained)) {
      write(store, layout.prefix() + "archive.tar.zst", "images of " + layout.checkpointName());
      write(store, layout.manifestKey(), "{}");
    }
    write(store, retained.retainedMarkerKey(), "kept on purpose");
    write(store, "backups/etc.tar", "not ours");
    write(store, "jobs/notes-without-uid/readme.txt", "not ours either");
    write(store, ObjectStore.CHECK_PROBE_PREFIX + "x1", "a storage check that failed after writing its probe");
    ObjectUpload crashedUpload = startUpload(store, crashed.prefix() + "archive.tar.zst");
    ObjectUpload goneUpload = startUpload(store, gone.prefix() + "late.tar.zst");
    ObjectUpload liveUpload = startUpload(store, live.prefix() + "second.tar.zst");
    List<StoredObject> before = store.list("").stream()
        .filter(o -> !o.key().startsWith(ObjectStore.CHECK_PROBE_PREFIX)).toList();
    assertThat(store.listUnfinished("")).extracting(StoredObject::key).containsExactlyInAnyOrder(
        crashed.prefix() + "archive.tar.zst", gone.prefix() + "late.tar.zst", live.prefix() + "second.tar.zst");
    Set<String> existing = Set.of(LIVE);

    var fresh = StorageGarbageCollector.collect(store, THIS_CLUSTER, l -> existing.contains(l.checkpointUid()),
        NO_CHUNKS, NO_KEYS, GRACE, DEFAULT_MAX_UNUSED_PERCENT, Instant.now().plus(Duration.ofMinutes(50)));
    assertThat(fresh.isEmpty()).as("nothing is touched within the grace period").isTrue();
    assertThat(store.listUnfinished("")).hasSize(3);

    var collected = StorageGarbageCollector.collect(store, THIS_CLUSTER, l -> existing.contains(l.checkpointUid()),
        NO_CHUNKS, NO_KEYS, GRACE, DEFAULT_MAX_UNUSED_PERCENT, Instant.now().plus(Duration.ofMinutes(70)));
    assertThat(collected.prefixes()).containsExactlyInAnyOrder(gone.prefix(), crashed.prefix());
    assertThat(collected.objects()).isEqualTo(2);
    assertThat(collected.bytes()).isEqualTo(("images of " + gone.checkpointName()).length() + 2);
    assertThat(collected.unfinishedUploads()).isEqualTo(2);
    assertThat(collected.probes()).isEqualTo(1);
    assertThat(store.list("")).containsExactlyInAnyOrderElementsOf(
        before.stream().filter(o -> !o.key().startsWith(gone.prefix())).toList());
    // s3proxy now and then leaves an unfinished upload out of one listing, so that one pass cannot abort
    // it; the collector runs again and again, and the next pass must.
    await().atMost(Duration.ofSeconds(30)).untilAsserted(() -> {
      if (store.listUnfinished("").size() > 1) {
        StorageGarbageCollector.collect(store, THIS_CLUSTER, l -> existing.contains(l.checkpointUid()), NO_CHUNKS,
            NO_KEYS, GRACE, DEFAULT_MAX_UNUSED_PERCENT, Instant.now().plus(Duration.ofMinutes(70)));
      }
      assertThat(store.listUnfinished("")).extracting(StoredObject::key).containsExactly(live.prefix() + "second.tar.zst");
    });
    assertThatThrownBy(crashedUpload::commit).as("an upload collected as garbage cannot commit any more")
        .isInstanceOf(IOException.class);
    goneUpload.abort();
    liveUpload.abort();
  }

  /** An upload left open, with more than one S3 part written so that S3 holds a multipart upload. */
  private static ObjectUpload startUpload(ObjectStore store, String key) throws IOException {
    ObjectUpload upload = store.upload(key);
    upload.stream().write(new byte[S3ObjectStore.MIN_PART_SIZE + 1]);
    upload.stream().flush();
    return upload;
  }

  private static void write(ObjectStore store, String key, String content) throws IOException {
    store.put(key, content.getBytes(StandardCharsets.UTF_8));
  }
}
