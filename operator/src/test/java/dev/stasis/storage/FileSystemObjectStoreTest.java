package dev.stasis.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileSystemObjectStoreTest implements ObjectStoreContract {
  @TempDir Path temp;
  Path root;
  FileSystemObjectStore store;

  private static int mode(Path path) throws IOException {
    return (Integer) Files.getAttribute(path, "unix:mode") & 07777;
  }

  @BeforeEach
  void createStore() {
    root = temp.resolve("storage");
    store = new FileSystemObjectStore(root);
  }

  @Override
  public ObjectStore store() {
    return store;
  }

  @Test
  void anUploadBecomesVisibleOnlyWhenCommitted() throws IOException {
    try (ObjectUpload upload = store.upload("ns/ckpt-1/archive.tar.zst")) {
      upload.stream().write(bytes("first half, "));
      upload.stream().close();
      upload.stream().write(bytes("second half"));

      assertThat(store.exists("ns/ckpt-1/archive.tar.zst")).isFalse();
      assertThat(store.list("ns/")).isEmpty();
      assertThatThrownBy(() -> store.read("ns/ckpt-1/archive.tar.zst")).isInstanceOf(ObjectNotFoundException.class);

      assertThat(upload.commit()).isEqualTo(23);
    }

    assertThat(store.read("ns/ckpt-1/archive.tar.zst")).asString(StandardCharsets.UTF_8).isEqualTo("first half, second half");
    try (InputStream in = store.open("ns/ckpt-1/archive.tar.zst")) {
      assertThat(in).hasContent("first half, second half");
    }
    assertThat(store.list("ns/")).singleElement()
        .satisfies(object -> {
          assertThat(object.key()).isEqualTo("ns/ckpt-1/archive.tar.zst");
          assertThat(object.sizeBytes()).isEqualTo(23);
        });
    assertThat(filesUnder(root)).containsExactly("ns/ckpt-1/archive.tar.zst");
  }

  @Test
  void whatItCreatesIsForItsOwnerAndGroupOnlyAndTakesTheGroupOfASetgidRoot() throws IOException {
    // As on a cluster: the operator's group (65532) owns the root, setgid; the agent writes as root.
    Files.createDirectories(root);
    Files.setAttribute(root, "unix:gid", 65532);
    Files.setAttribute(root, "unix:mode", 02770);

    store.put("ns/ckpt-1/manifest.json", bytes("{}"));

    for (Path folder : List.of(root.resolve("ns"), root.resolve("ns/ckpt-1"))) {
      assertThat(Integer.toOctalString(mode(folder))).as("%s", folder).isEqualTo("2770");
      assertThat(Files.getAttribute(folder, "unix:gid")).isEqualTo(65532);
    }
    Path file = root.resolve("ns/ckpt-1/manifest.json");
    assertThat(Integer.toOctalString(mode(file))).isEqualTo("660");
    assertThat(Files.getAttribute(file, "unix:gid")).isEqualTo(65532);
  }

  @Test
  void aRootItCreatesIsForItsOwnerAndGroupOnly() throws Exception {
    store.check();
    store.put("ns/ckpt-1/manifest.json", bytes("{}"));

    assertThat(Integer.toOctalString(mode(root))).isEqualTo("770");
    assertThat(Integer.toOctalString(mode(root.resolve("ns")))).isEqualTo("770");
    assertThat(Integer.toOctalString(mode(root.resolve("ns/ckpt-1/manifest.json")))).isEqualTo("660");
    assertThat(Integer.toOctalString(mode(temp))).as("folders above the root are not the store's").isEqualTo("700");
  }

  @Test
  void anAbortedOrAbandonedUploadLeavesNothing() throws IOException {
    ObjectUpload aborted = store.upload("ns/ckpt-1/archive.tar.zst");
    aborted.stream().write(new byte[3 << 20]);
    assertThat(filesUnder(root)).singleElement().asString().startsWith("ns/ckpt-1/.archive.tar.zst.partial-");
    aborted.abort();
    aborted.abort();
    try (ObjectUpload abandoned = store.upload("ns/ckpt-1/manifest.json")) {
      abandoned.stream().write(bytes("{}"));
    }

    assertThat(filesUnder(root)).isEmpty();
    assertThat(store.exists("ns/ckpt-1/archive.tar.zst")).isFalse();
    // Like S3's: an abort (an agent's shutdown, from another thread) is a failure the writer reports.
    assertThatThrownBy(() -> aborted.stream().write(1)).isInstanceOf(IOException.class).hasMessageContaining("aborted");
    assertThatThrownBy(aborted::commit).isInstanceOf(IOException.class).hasMessageContaining("the upload was aborted");
  }

  /**
   * A writer killed (SIGKILL, no cleanup of its own) in the middle of a put: its bytes stay in a
   * partial file the listings skip, never under the key, and only an older-than cut-off removes it.
   */
  @Test
  void aPutKilledMidWriteLeavesNothingUnderItsKey() throws Exception {
    String key = "ns/.chunks/ab/" + "ab".repeat(32);
    Process writer = new ProcessBuilder(ProcessHandle.current().info().command().orElseThrow(),
        "-cp", System.getProperty("java.class.path"), EndlessPut.class.getName(), root.toString(), key)
        .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    try (var lines = writer.inputReader()) {
      assertThat(lines.readLine()).as("the writer got going").isEqualTo("writing");
      // wait until the partial file holds more than one buffer's worth, so the kill lands mid-write
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (store.listUnfinished("").stream().mapToLong(StoredObject::sizeBytes).sum() < 3 << 20) {
        assertThat(System.nanoTime()).as("the writer wrote 3 MiB").isLessThan(deadline);
        Thread.sleep(20);
      }
    } finally {
      writer.destroyForcibly(); // SIGKILL to the one process this test started
      writer.waitFor();
    }

    assertThat(store.exists(key)).isFalse();
    assertThatThrownBy(() -> store.read(key)).isInstanceOf(ObjectNotFoundException.class);
    assertThat(store.list("")).isEmpty();
    assertThat(store.listUnfinished("")).singleElement().extracting(StoredObject::key).isEqualTo(key);
    Instant lastGrew = store.listUnfinished("").get(0).lastModified();
    assertThat(store.deleteUnfinished(key, lastGrew)).as("not older than the cut-off").isZero();
    assertThat(store.deleteUnfinished(key, lastGrew.plusSeconds(1))).isEqualTo(1);
    assertThat(filesUnder(root)).isEmpty();
  }

  /** An interrupted writer's put fails, and what it had written goes with it. */
  @Test
  void anInterruptedPutLeavesNothing() throws Exception {
    Thread.currentThread().interrupt();
    try {
      assertThatThrownBy(() -> store.put("ns/ckpt-1/manifest.json", new byte[4 << 20])).isInstanceOf(IOException.class);
    } finally {
      Thread.interrupted();
    }
    assertThat(store.exists("ns/ckpt-1/manifest.json")).isFalse();
    assertThat(filesUnder(root)).isEmpty();
  }

  /** Writes one object forever, a little at a time: the writer the test above kills. */
  public static final class EndlessPut {
    public static void main(String[] args) throws Exception {
      ObjectUpload upload = new FileSystemObjectStore(Path.of(args[0])).upload(args[1]);
      System.out.println("writing");
      System.out.flush();
      byte[] block = new byte[256 << 10];
      while (true) {
        upload.stream().write(block);
        upload.stream().flush();
        Thread.sleep(5);
      }
    }
  }

  @Test
  void aCommittedUploadCannotBeCommittedAgain() throws IOException {
    ObjectUpload upload = store.upload("ns/ckpt-1/manifest.json");
    upload.stream().write(bytes("{}"));
    upload.commit();
    assertThatThrownBy(upload::commit).isInstanceOf(IllegalStateException.class).hasMessageContaining("already committed");
    assertThat(store.read("ns/ckpt-1/manifest.json")).isEqualTo(bytes("{}"));
  }

  @Test
  void putReplacesAnObjectWhole() throws IOException {
    store.put("ns/ckpt-1/manifest.json", bytes("old"));
    store.put("ns/ckpt-1/manifest.json", bytes("new"));

    assertThat(store.read("ns/ckpt-1/manifest.json")).asString(StandardCharsets.UTF_8).isEqualTo("new");
    assertThat(filesUnder(root)).containsExactly("ns/ckpt-1/manifest.json");
  }

  @Test
  void missingObjectsAreNotFound() {
    assertThatThrownBy(() -> store.open("ns/none/archive.tar.zst"))
        .isInstanceOf(ObjectNotFoundException.class)
        .hasMessage("no object at file://" + root + "/ns/none/archive.tar.zst");
    assertThatThrownBy(() -> store.read("ns/none/manifest.json")).isInstanceOf(ObjectNotFoundException.class);
  }

  /** A namespace's checkpoints without what is inside them; exactly the objects named are deleted. */
  @Test
  void listsFoldersAndDeletesObjectsByKey() throws IOException {
    store.put("ns/ckpt-1/manifest.json", bytes("manifest 1"));
    store.put("ns/ckpt-2/containers/web/manifest.json", bytes("manifest 2"));
    store.put("ns/.chunks/ab/ab01", bytes("chunk"));
    store.put("ns/loose.txt", bytes("not a folder"));

    assertThat(store.folders("ns/")).containsExactly("ns/.chunks/", "ns/ckpt-1/", "ns/ckpt-2/");
    assertThat(store.folders("ns/ckpt-2/containers/")).containsExactly("ns/ckpt-2/containers/web/");
    assertThat(store.folders("")).containsExactly("ns/");
    assertThat(store.folders("missing/")).isEmpty();

    store.delete(List.of("ns/ckpt-1/manifest.json", "ns/.chunks/ab/ab01", "ns/never-there"));
    assertThat(filesUnder(root)).containsExactly("ns/ckpt-2/containers/web/manifest.json", "ns/loose.txt");
  }

  @Test
  void listsByPrefixAndDeletesAllUnderIt() throws IOException {
    store.put("ns/ckpt-1/archive.tar.zst", bytes("archive 1"));
    store.put("ns/ckpt-1/manifest.json", bytes("manifest 1"));
    store.put("ns/ckpt-12/manifest.json", bytes("manifest 12"));
    store.put("other/ckpt-3/manifest.json", bytes("manifest 3"));
    ObjectUpload unfinished = store.upload("ns/ckpt-1/late.tar.zst");
    unfinished.stream().write(bytes("still uploading"));

    assertThat(store.list("ns/ckpt-1/")).extracting(StoredObject::key)
        .containsExactly("ns/ckpt-1/archive.tar.zst", "ns/ckpt-1/manifest.json");
    assertThat(store.list("ns/ckpt-1")).extracting(StoredObject::key)
        .containsExactly("ns/ckpt-1/archive.tar.zst", "ns/ckpt-1/manifest.json", "ns/ckpt-12/manifest.json");
    assertThat(store.list("")).hasSize(4);
    assertThat(store.list("missing/")).isEmpty();

    store.deleteAll("ns/ckpt-1/");

    assertThat(filesUnder(root)).containsExactly("ns/ckpt-12/manifest.json", "other/ckpt-3/manifest.json");
    assertThat(root.resolve("ns/ckpt-1")).doesNotExist();
    assertThat(root.resolve("ns")).isDirectory();
    assertThatThrownBy(unfinished::commit).isInstanceOf(IOException.class);
    store.deleteAll("ns/ckpt-1/");
  }

  @Test
  void checkCreatesTheRootAndLeavesNoProbeBehind() throws IOException {
    store.check();

    assertThat(root).isEmptyDirectory();
  }

  @Test
  void checkSaysWhyThePathIsNotWritable() throws IOException {
    // A regular file where a folder should be stops root as well as anyone else.
    Path file = Files.writeString(temp.resolve("file"), "not a folder");
    FileSystemObjectStore unusable = new FileSystemObjectStore(file.resolve("storage"));

    assertThatThrownBy(unusable::check)
        .isInstanceOf(StorageUnavailableException.class)
        .hasMessage("filesystem storage " + file.resolve("storage") + " is not writable: " + file + " exists and is not a directory");
  }

  @Test
  void refusesKeysThatLeaveTheRoot() {
    assertThatThrownBy(() -> store.upload("../outside")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> store.put("/etc/passwd", bytes("x"))).isInstanceOf(IllegalArgumentException.class);
  }

  private static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }

  private static List<String> filesUnder(Path root) throws IOException {
    if (!Files.exists(root)) {
      return List.of();
    }
    try (Stream<Path> paths = Files.walk(root)) {
      return paths.filter(Files::isRegularFile).map(p -> root.relativize(p).toString()).sorted().toList();
    }
  }
}
