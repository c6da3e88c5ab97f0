package dev.stasis.testing;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Properties;
import java.util.stream.Stream;
import org.gaul.s3proxy.AuthenticationType;
import org.gaul.s3proxy.S3Proxy;
import org.gaul.s3proxy.nio2blob.FilesystemNio2BlobApiMetadata;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStoreContext;

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
  private final S3Proxy proxy;

  private S3Server(Path directory, BlobStoreContext blobStoreContext, S3Proxy proxy) {
    this.directory = directory;
    this.blobStoreContext = blobStoreContext;
    this.proxy = proxy;
  }

  public static S3Server start() throws Exception {
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
    S3Proxy proxy = S3Proxy.builder()
        .blobStore(context.getBlobStore())
        .endpoint(URI.create("http://127.0.0.1:0"))
        .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
        .build();
    proxy.start();
    // s3proxy's own JUnit support waits like this before handing out the endpoint.
    while (!proxy.getState().equals("STARTED")) {
      Thread.sleep(10);
    }
    return new S3Server(directory, context, proxy);
  }

  /** The URL clients connect to, e.g. {@code http://127.0.0.1:41234}. */
  public String endpoint() {
    return "http://127.0.0.1:" + proxy.getPort();
  }

  public String accessKey() {
    return ACCESS_KEY;
  }

  public String secretKey() {
    return SECRET_KEY;
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

  private static void deleteRecursively(Path directory) throws IOException {
    try (Stream<Path> paths = Files.walk(directory)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(path);
      }
    }
  }
}
