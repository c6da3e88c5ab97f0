package dev.stasis.operator.retention;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.archive.ArchiveLayout;
import dev.stasis.storage.FileSystemObjectStore;
import dev.stasis.storage.ObjectStore;
import dev.stasis.storage.S3Config;
import dev.stasis.storage.S3ObjectStore;
import dev.stasis.storage.StoredObject;
import dev.stasis.testing.S3Server;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The garbage collector on the real object stores: a directory and an S3 server (s3proxy). */
class StorageGarbageCollectorTest {
  static final String LIVE = "11111111-1111-1111-1111-111111111111";
  static final String GONE = "22222222-2222-2222-2222-222222222222";
  static final String RETAINED = "33333333-3333-3333-3333-333333333333";
  static final Duration GRACE = Duration.ofHours(1);

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
      try (ObjectStore store = new S3ObjectStore(new S3Config(server.endpoint(), "checkpoints", "stasis", null, true,
          server.accessKey(), server.secretKey()))) {
        removesOnlyWhatNoCheckpointOwns(store);
      }
    }
  }

  private void removesOnlyWhatNoCheckpointOwns(ObjectStore store) throws IOException {
    ArchiveLayout live = new ArchiveLayout("jobs", "live", LIVE);
    ArchiveLayout gone = new ArchiveLayout("jobs", "sim-20250310100010", GONE);
    ArchiveLayout retained = new ArchiveLayout("jobs", "kept", RETAINED);
    for (ArchiveLayout layout : List.of(live, gone, retained)) {
      write(store, layout.prefix() + "archive.tar.zst", "images of " + layout.checkpointName());
      write(store, layout.manifestKey(), "{}");
    }
    write(store, retained.retainedMarkerKey(), "kept on purpose");
    write(store, "backups/etc.tar", "not ours");
    write(store, "jobs/notes-without-uid/readme.txt", "not ours either");
    List<StoredObject> before = store.list("");
    Set<String> existing = Set.of(LIVE);

    var fresh = StorageGarbageCollector.collect(store, () -> existing, GRACE, Instant.now().plus(Duration.ofMinutes(50)));
    assertThat(fresh.isEmpty()).as("nothing is touched within the grace period").isTrue();

    var collected = StorageGarbageCollector.collect(store, () -> existing, GRACE, Instant.now().plus(Duration.ofMinutes(70)));
    assertThat(collected.prefixes()).containsExactly(gone.prefix());
    assertThat(collected.objects()).isEqualTo(2);
    assertThat(collected.bytes()).isEqualTo(("images of " + gone.checkpointName()).length() + 2);
    assertThat(store.list("")).containsExactlyInAnyOrderElementsOf(
        before.stream().filter(o -> !o.key().startsWith(gone.prefix())).toList());
  }

  private static void write(ObjectStore store, String key, String content) throws IOException {
    store.put(key, content.getBytes(StandardCharsets.UTF_8));
  }
}
