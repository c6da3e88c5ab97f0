package dev.stasis.testing;

import java.io.IOException;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.UUID;
import java.util.stream.Stream;
import org.gaul.s3proxy.AuthenticationType;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import org.gaul.s3proxy.S3Proxy;
import org.gaul.s3proxy.nio2blob.FilesystemNio2BlobApiMetadata;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStore;
import org.jclouds.blobstore.BlobStoreContext;
import org.jclouds.blobstore.domain.MultipartPart;
import org.jclouds.blobstore.domain.MultipartUpload;
import org.jclouds.blobstore.util.ForwardingBlobStore;

/**
 * An S3-compatible server (s3proxy) on 127.0.0.1, for tests: path-style addressing, AWS v2/v4
 * signatures with its own access key, objects stored as files in a temporary directory (big
 * objects do not fill the heap). Each test starts its own and closes it.
 */
public final class S3Server implements AutoCloseable {
  private static final String ACCESS_KEY = "stasis-test-access-key";
  private static final String SECRET_KEY = "stasis-test-secret-key";

  private final Path directory;
  private final BlobStoreContext blobStoreContext;
  private final BlobStore blobStore;
  private final int port;
  private volatile S3Proxy proxy;

  private S3Server(Path directory, BlobStoreContext blobStoreContext, BlobStore blobStore, S3Proxy proxy) {
    this.directory = directory;
    this.blobStoreContext = blobStoreContext;
    this.blobStore = blobStore;
    this.proxy = proxy;
    this.port = proxy.getPort();
  }

  public static S3Server start() throws Exception {
    return start(false);
  }

  /**
   * Like {@link #start()}, but completing a multipart upload joins the part files in the kernel
   * ({@link PartJoiningBlobStore}) instead of reading every byte back through MD5 into a new file,
   * as s3proxy 3.3.0 does. AWS S3 and MinIO do not make the uploader wait for such a pass either,
   * so benchmarks measure this server's cost for a multipart upload closer to theirs.
   */
  public static S3Server startJoiningMultipartParts() throws Exception {
    return start(true);
  }

  private static S3Server start(boolean joinParts) throws Exception {
    Path directory = Files.createTempDirectory("stasis-s3-");
    Properties properties = new Properties();
    properties.setProperty("jclouds.filesystem.basedir", directory.toString());
    // By metadata rather than by name: looking a provider up by name loads every jclouds provider,
    // and some of those need jars the pom excludes. s3proxy's filesystem-nio2 store behaves like
    // S3 where jclouds' "filesystem" does not: it lists no folders as objects and keeps unfinished
    // multipart parts out of listings.
    BlobStoreContext context = ContextBuilder.newBuilder(new FilesystemNio2BlobApiMetadata())
        .credentials("identity", "credential")
        .overrides(properties)
        .buildView(BlobStoreContext.class);
    BlobStore blobStore = joinParts ? new PartJoiningBlobStore(context.getBlobStore(), directory)
        : context.getBlobStore();
    return new S3Server(directory, context, blobStore, startProxy(blobStore, 0));
  }

  private static S3Proxy startProxy(BlobStore blobStore, int port) throws Exception {
    S3Proxy proxy = S3Proxy.builder()
        .blobStore(blobStore)
        .endpoint(URI.create("http://127.0.0.1:" + port))
        .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
        .build();
    proxy.start();
    // s3proxy's own JUnit support waits like this before handing out the endpoint.
    while (!proxy.getState().equals("STARTED")) {
      Thread.sleep(10);
    }
    return proxy;
  }

  /** An outage: the server stops answering (connections refused) but keeps what it stores. */
  public void pause() throws Exception {
    proxy.stop();
  }

  /** The outage is over: the same endpoint answers again, with everything stored before. */
  public void resume() throws Exception {
    proxy = startProxy(blobStore, port);
  }

  /** The URL clients connect to, e.g. {@code http://127.0.0.1:41234}. */
  public String endpoint() {
    return "http://127.0.0.1:" + port;
  }

  public String accessKey() {
    return ACCESS_KEY;
  }

  public String secretKey() {
    return SECRET_KEY;
  }

  /** A client of this server, for tests that look into its buckets. */
  public S3Client client() {
    return S3Client.builder()
        .httpClientBuilder(UrlConnectionHttpClient.builder())
        .region(Region.US_EAST_1)
        .endpointOverride(URI.create(endpoint()))
        .forcePathStyle(true)
        .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(ACCESS_KEY, SECRET_KEY)))
        .build();
  }

  /** Bucket names follow S3's rules: s3proxy answers NoSuchBucket for names shorter than 3 characters. */
  public void createBucket(String name) {
    blobStoreContext.getBlobStore().createContainerInLocation(null, name);
  }

  public void stop() throws Exception {
    proxy.stop();
    blobStoreContext.close();
    deleteRecursively(directory);
  }

  @Override
  public void close() throws Exception {
    stop();
  }

  /**
   * Completes multipart uploads of s3proxy's filesystem-nio2 store by appending its part files to
   * one another with {@link FileChannel#transferTo} (copy_file_range), the way s3proxy 4.0 does.
   * It relies on that store's layout in 3.3.0: object {@code key} of bucket {@code b} is the file
   * {@code <dir>/b/key}, part {@code n} of upload {@code id} is {@code <dir>/b/.mpus-<id>-key-<n>},
   * and the ETag is kept in the user attribute {@code user.content-md5} (extended attribute
   * {@code user.user.content-md5}): without it, the object is served without an ETag.
   */
  private static final class PartJoiningBlobStore extends ForwardingBlobStore {
    private static final String MULTIPART_PREFIX = ".mpus-";
    private static final String ETAG_ATTRIBUTE = "user.content-md5";
    private final Path directory;

    PartJoiningBlobStore(BlobStore delegate, Path directory) {
      super(delegate);
      this.directory = directory;
    }

    @Override
    public String completeMultipartUpload(MultipartUpload upload, List<MultipartPart> parts) {
      Path bucket = directory.resolve(upload.containerName());
      Path target = bucket.resolve(upload.blobName()).normalize();
      if (!target.startsWith(bucket)) {
        throw new IllegalArgumentException("key " + upload.blobName() + " leaves the bucket");
      }
      String partPrefix = MULTIPART_PREFIX + upload.id() + "-" + upload.blobName() + "-";
      Path joined = target.resolveSibling(target.getFileName() + "-" + UUID.randomUUID());
      try {
        Files.createDirectories(target.getParent());
        MessageDigest partDigests = MessageDigest.getInstance("MD5");
        try (FileChannel out = FileChannel.open(joined, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
          for (MultipartPart part : parts) {
            try (FileChannel in = FileChannel.open(bucket.resolve(partPrefix + part.partNumber()))) {
              for (long position = 0, size = in.size(); position < size; ) {
                position += in.transferTo(position, size - position, out);
              }
            }
            partDigests.update(HexFormat.of().parseHex(part.partETag().replace("\"", "")));
          }
        }
        // S3's multipart ETag: the MD5 of the parts' MD5s, then the number of parts.
        String eTag = "\"" + HexFormat.of().formatHex(partDigests.digest()) + "-" + parts.size() + "\"";
        Files.getFileAttributeView(joined, UserDefinedFileAttributeView.class)
            .write(ETAG_ATTRIBUTE, ByteBuffer.wrap(eTag.getBytes(StandardCharsets.US_ASCII)));
        Files.move(joined, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      } catch (IOException | NoSuchAlgorithmException e) {
        throw new IllegalStateException("joining the parts of " + upload.blobName() + " failed: " + e, e);
      }
      for (MultipartPart part : delegate().listMultipartUpload(upload)) {
        delegate().removeBlob(upload.containerName(), partPrefix + part.partNumber());
      }
      delegate().removeBlob(upload.containerName(), partPrefix + "stub");
      return delegate().blobMetadata(upload.containerName(), upload.blobName()).getETag();
    }
  }

  private static void deleteRecursively(Path directory) throws IOException {
    try (Stream<Path> paths = Files.walk(directory)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(path);
      }
    }
  }
}
