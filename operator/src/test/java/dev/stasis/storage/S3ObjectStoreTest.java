package dev.stasis.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveLayout;
import dev.stasis.archive.ArchiveReader;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.ArchiveWriter;
import dev.stasis.archive.Sha256;
import dev.stasis.testing.FaultInjectingProxy;
import dev.stasis.testing.S3Server;
import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.MultipartUpload;
import software.amazon.awssdk.services.s3.model.S3Object;

class S3ObjectStoreTest implements ObjectStoreContract {
  private static final String BUCKET = "stasis";
  private static final String PREFIX = "checkpoints";

  S3Server server;
  S3ObjectStore store;
  /** Looks at the bucket directly, past the store and its prefix. */
  S3Client bucket;

  @BeforeEach
  void startServer() throws Exception {
    server = S3Server.start();
    server.createBucket(BUCKET);
    store = new S3ObjectStore(config(server.endpoint(), BUCKET, server.secretKey()));
    bucket = S3Client.builder()
        .httpClientBuilder(UrlConnectionHttpClient.builder())
        .region(Region.US_EAST_1)
        .endpointOverride(URI.create(server.endpoint()))
        .forcePathStyle(true)
        .credentialsProvider(StaticCredentialsProvider.create(
            AwsBasicCredentials.create(server.accessKey(), server.secretKey())))
        .build();
  }

  @Override
  public ObjectStore store() {
    return store;
  }

  @AfterEach
  void stopServer() throws Exception {
    bucket.close();
    store.close();
    server.close();
  }

  @Test
  void uploadsALargeObjectInPartsWhileItIsWritten() throws IOException {
    byte[] content = randomBytes(30 << 20);
    boolean sentPartsBeforeCommit = false;
    try (ObjectUpload upload = store.upload("ns/ckpt-1/archive.tar.zst")) {
      // Odd chunk sizes, so that writes straddle part boundaries.
      int written = 0;
      for (int chunk = 1_000_003; written < content.length; written += chunk) {
        upload.stream().write(content, written, Math.min(chunk, content.length - written));
        // s3proxy sometimes lists no uploads while parts are being stored, so one sighting is enough.
        if (written > 17 << 20) {
          sentPartsBeforeCommit |= multipartUploads().stream()
              .anyMatch(multipart -> multipart.key().equals(PREFIX + "/ns/ckpt-1/archive.tar.zst"));
        }
      }
      assertThat(sentPartsBeforeCommit).isTrue();
      assertThat(store.exists("ns/ckpt-1/archive.tar.zst")).isFalse();

      assertThat(upload.commit()).isEqualTo(content.length);
    }

    assertThat(multipartUploads()).isEmpty();
    try (InputStream in = store.open("ns/ckpt-1/archive.tar.zst")) {
      assertThat(in.readAllBytes()).isEqualTo(content);
    }
    assertThat(store.list("ns/")).singleElement()
        .satisfies(object -> assertThat(object.sizeBytes()).isEqualTo(content.length));
  }

  @Test
  void streamsAnArchiveIntoAnUploadAndBackOut(@TempDir Path temp) throws IOException {
    Path checkpoint = Files.createDirectories(temp.resolve("checkpoint/images"));
    Files.write(checkpoint.resolve("pages-1.img"), randomBytes(20 << 20));
    Files.writeString(checkpoint.resolve("inventory.img"), "inventory");
    ArchiveLayout layout = new ArchiveLayout("ns", "ckpt", "uid-1");
    String key = layout.archiveKey(ArchiveCodec.ZSTD);

    ArchiveSummary summary;
    try (ObjectUpload upload = store.upload(key)) {
      summary = new ArchiveWriter().write(checkpoint, upload.stream(), ArchiveCodec.ZSTD);
      assertThat(upload.commit()).isEqualTo(summary.storedBytes());
    }
    try (InputStream in = store.open(key)) {
      new ArchiveReader().extract(in, temp.resolve("restored"), ArchiveCodec.ZSTD, summary);
    }

    assertThat(temp.resolve("restored/pages-1.img")).hasSameBinaryContentAs(checkpoint.resolve("pages-1.img"));
    assertThat(temp.resolve("restored/inventory.img")).hasContent("inventory");
  }

  @Test
  void sendsAnObjectSmallerThanOnePartInOnePut() throws IOException {
    try (ObjectUpload upload = store.upload("ns/ckpt-1/archive.tar")) {
      upload.stream().write(bytes("small archive"));
      assertThat(multipartUploads()).isEmpty();
      assertThat(upload.commit()).isEqualTo(13);
    }
    try (ObjectUpload upload = store.upload("ns/ckpt-1/empty")) {
      assertThat(upload.commit()).isZero();
    }

    assertThat(store.read("ns/ckpt-1/archive.tar")).asString(StandardCharsets.UTF_8).isEqualTo("small archive");
    assertThat(store.read("ns/ckpt-1/empty")).isEmpty();
    assertThat(multipartUploads()).isEmpty();
  }

  @Test
  void anAbortedOrAbandonedUploadLeavesNoObjectAndNoParts() throws IOException {
    ObjectUpload aborted = store.upload("ns/ckpt-1/archive.tar.zst");
    aborted.stream().write(randomBytes(20 << 20));
    assertThat(multipartUploads()).hasSize(1);
    aborted.abort();
    aborted.abort();
    try (ObjectUpload abandoned = store.upload("ns/ckpt-2/archive.tar.zst")) {
      abandoned.stream().write(randomBytes(9 << 20));
    }

    assertThat(multipartUploads()).isEmpty();
    assertThat(allObjects()).isEmpty();
    assertThatThrownBy(() -> aborted.stream().write(1)).isInstanceOf(IOException.class).hasMessageContaining("aborted");
    assertThatThrownBy(aborted::commit).isInstanceOf(IOException.class).hasMessageContaining("the upload was aborted");
  }

  @Test
  void aCommittedUploadCannotBeCommittedAgain() throws IOException {
    ObjectUpload upload = store.upload("ns/ckpt-1/manifest.json");
    upload.stream().write(bytes("{}"));
    upload.commit();
    assertThatThrownBy(upload::commit).isInstanceOf(IllegalStateException.class).hasMessageContaining("already committed");
    assertThat(store.read("ns/ckpt-1/manifest.json")).isEqualTo(bytes("{}"));
  }

  /**
   * An agent's shutdown aborts an upload from its own thread while the writer is still creating the
   * multipart upload (the request held here for two seconds): the upload created in that moment is
   * aborted too, not left in the bucket.
   */
  @Test
  void anAbortWhileTheMultipartUploadIsBeingCreatedLeavesNoUploadBehind() throws Exception {
    try (FaultInjectingProxy link = FaultInjectingProxy.to(server.endpoint());
        S3ObjectStore slow = new S3ObjectStore(config(link.endpoint(), BUCKET, server.secretKey()),
            S3ObjectStore.MIN_PART_SIZE)) {
      link.slow(request -> request.method().equals("POST") && request.target().endsWith("?uploads"),
          Duration.ofSeconds(2), 64L << 20);
      ObjectUpload upload = slow.upload("ns/ckpt-1/archive.tar.zst");
      Thread writer = new Thread(() -> {
        try {
          upload.stream().write(new byte[S3ObjectStore.MIN_PART_SIZE]); // a full part: the multipart upload starts
        } catch (IOException e) {
          // aborted: what the writer is told
        }
      });
      writer.start();
      await().atMost(Duration.ofSeconds(10)).until(() -> link.faulted() > 0);

      upload.abort();
      writer.join(Duration.ofSeconds(30).toMillis());

      assertThat(writer.isAlive()).isFalse();
      assertThat(multipartUploads()).isEmpty();
    }
  }

  /**
   * Over plain HTTP the parts of an archive go with UNSIGNED-PAYLOAD (the archive's own sha256
   * protects their bytes) and s3proxy, which checks every signature, takes them; a manifest is
   * signed whole.
   */
  @Test
  void archivePartsGoUnsignedOverPlainHttpAndManifestsSignedWhole() throws IOException {
    byte[] content = randomBytes(12 << 20);
    try (FaultInjectingProxy link = FaultInjectingProxy.to(server.endpoint());
        S3ObjectStore overHttp = new S3ObjectStore(config(link.endpoint(), BUCKET, server.secretKey()),
            S3ObjectStore.MIN_PART_SIZE)) {
      try (ObjectUpload upload = overHttp.upload("ns/ckpt-1/archive.tar.zst")) {
        upload.stream().write(content);
        upload.commit();
      }
      overHttp.put("ns/ckpt-1/manifest.json", bytes("manifest"));

      List<FaultInjectingProxy.Request> parts = link.requests().stream()
          .filter(request -> request.isUpload() && request.target().contains("partNumber=")).toList();
      assertThat(parts).hasSize(3).allSatisfy(part ->
          assertThat(part.header("x-amz-content-sha256")).hasValue("UNSIGNED-PAYLOAD"));
      FaultInjectingProxy.Request manifest = link.requests().stream()
          .filter(request -> request.isUpload() && request.target().contains("manifest.json")).findFirst().orElseThrow();
      assertThat(manifest.header("x-amz-content-sha256")).hasValue(Sha256.hexOf(bytes("manifest")));
    }
    try (InputStream stored = store.open("ns/ckpt-1/archive.tar.zst")) {
      assertThat(stored.readAllBytes()).isEqualTo(content);
    }
  }

  /**
   * A namespace's checkpoints without what is inside them (S3's common prefixes for the delimiter /);
   * exactly the objects named are deleted, more than one DeleteObjects request can hold.
   */
  @Test
  void listsFoldersAndDeletesObjectsByKey() throws IOException {
    store.put("ns/ckpt-1/manifest.json", bytes("manifest 1"));
    store.put("ns/ckpt-2/containers/web/manifest.json", bytes("manifest 2"));
    store.put("ns/loose.txt", bytes("not a folder"));
    bucket.putObject(b -> b.bucket(BUCKET).key("elsewhere/ns/ckpt-3/manifest.json"), RequestBody.fromString("not ours"));
    List<String> chunks = new ArrayList<>();
    for (int i = 0; i < 1001; i++) {
      chunks.add("ns/.chunks/ab/ab%04d".formatted(i));
    }
    for (String chunk : chunks) {
      store.put(chunk, bytes("c"));
    }

    assertThat(store.folders("ns/")).containsExactly("ns/.chunks/", "ns/ckpt-1/", "ns/ckpt-2/");
    assertThat(store.folders("ns/ckpt-2/containers/")).containsExactly("ns/ckpt-2/containers/web/");
    assertThat(store.folders("")).containsExactly("ns/");
    assertThat(store.folders("missing/")).isEmpty();

    List<String> doomed = new ArrayList<>(chunks);
    doomed.add("ns/ckpt-1/manifest.json");
    doomed.add("ns/never-there");
    store.delete(doomed);
    assertThat(store.list("")).extracting(StoredObject::key)
        .containsExactly("ns/ckpt-2/containers/web/manifest.json", "ns/loose.txt");
    assertThat(allObjects()).hasSize(3);
  }

  @Test
  void listsByPrefixAndDeletesAllUnderIt() throws IOException {
    store.put("ns/ckpt-1/archive.tar.zst", bytes("archive 1"));
    store.put("ns/ckpt-1/manifest.json", bytes("manifest 1"));
    store.put("ns/ckpt-12/manifest.json", bytes("manifest 12"));
    bucket.putObject(b -> b.bucket(BUCKET).key("elsewhere/ns/ckpt-1/manifest.json"), RequestBody.fromString("not ours"));
    ObjectUpload unfinished = store.upload("ns/ckpt-1/late.tar.zst");
    unfinished.stream().write(randomBytes(9 << 20));

    assertThat(store.list("ns/ckpt-1/")).extracting(StoredObject::key)
        .containsExactly("ns/ckpt-1/archive.tar.zst", "ns/ckpt-1/manifest.json");
    assertThat(store.list("ns/ckpt-1")).hasSize(3);
    assertThat(store.list("")).hasSize(3);

    store.deleteAll("ns/ckpt-1/");

    assertThat(store.list("")).extracting(StoredObject::key).containsExactly("ns/ckpt-12/manifest.json");
    assertThat(allObjects()).hasSize(2);
    assertThat(multipartUploads()).isEmpty();
    unfinished.abort();
  }

  @Test
  void missingObjectsAreNotFound() throws IOException {
    assertThatThrownBy(() -> store.open("ns/none/archive.tar.zst"))
        .isInstanceOf(ObjectNotFoundException.class)
        .hasMessage("no object at s3://stasis/checkpoints/ns/none/archive.tar.zst");
    assertThatThrownBy(() -> store.read("ns/none/manifest.json")).isInstanceOf(ObjectNotFoundException.class);
    assertThat(store.exists("ns/none/manifest.json")).isFalse();
  }

  @Test
  void checkPassesAndLeavesNoProbeBehind() throws IOException {
    store.check();

    assertThat(allObjects()).isEmpty();
  }

  @Test
  void checkSaysTheBucketIsMissing() {
    try (S3ObjectStore missing = new S3ObjectStore(config(server.endpoint(), "no-such-bucket", server.secretKey()))) {
      assertThatThrownBy(missing::check)
          .isInstanceOf(StorageUnavailableException.class)
          .hasMessage("bucket no-such-bucket does not exist at " + server.endpoint());
    }
  }

  @Test
  void checkSaysTheCredentialsAreWrong() {
    try (S3ObjectStore wrongSecret = new S3ObjectStore(config(server.endpoint(), BUCKET, "wrong-secret"))) {
      assertThatThrownBy(wrongSecret::check)
          .isInstanceOf(StorageUnavailableException.class)
          .hasMessageStartingWith("access denied to bucket stasis: check the credentials Secret");
    }
  }

  @Test
  void checkSaysTheEndpointIsUnreachable() throws IOException {
    String nothingListening;
    try (ServerSocket socket = new ServerSocket(0)) {
      nothingListening = "http://127.0.0.1:" + socket.getLocalPort();
    }
    try (S3ObjectStore unreachable = new S3ObjectStore(config(nothingListening, BUCKET, server.secretKey()))) {
      assertThatThrownBy(unreachable::check)
          .isInstanceOf(StorageUnavailableException.class)
          .hasMessage("cannot reach S3 endpoint " + nothingListening + ": connection refused");
    }
  }

  @Test
  void namesObjectsAsS3Uris() {
    assertThat(store.uri("ns/ckpt-1/manifest.json")).isEqualTo("s3://stasis/checkpoints/ns/ckpt-1/manifest.json");
  }

  private S3Config config(String endpoint, String bucketName, String secretKey) {
    return new S3Config(endpoint, bucketName, PREFIX, null, true, server.accessKey(), secretKey);
  }

  private List<MultipartUpload> multipartUploads() {
    return bucket.listMultipartUploads(b -> b.bucket(BUCKET)).uploads();
  }

  private List<S3Object> allObjects() {
    return bucket.listObjectsV2(b -> b.bucket(BUCKET)).contents();
  }

  private static byte[] randomBytes(int size) {
    byte[] bytes = new byte[size];
    new Random(size).nextBytes(bytes);
    return bytes;
  }

  private static byte[] bytes(String text) {
    return text.getBytes(StandardCharsets.UTF_8);
  }
}
