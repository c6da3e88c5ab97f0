package dev.stasis.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;

/**
 * A real OCI registry for tests: Debian's docker-registry (distribution 2.8, installed by
 * scripts/install-test-tools.sh) on 127.0.0.1 with TLS from a test CA, htpasswd (bcrypt) users,
 * deletion enabled and its blobs in a temporary folder. Stopped by PID.
 */
public final class RegistryServer implements AutoCloseable {
  private final Process process;
  private final int port;
  private final String username;
  private final String password;
  private final HttpClient http;

  private RegistryServer(Process process, int port, String username, String password, SSLContext trust) {
    this.process = process;
    this.port = port;
    this.username = username;
    this.password = password;
    this.http = HttpClient.newBuilder().sslContext(trust).build();
  }

  public static RegistryServer start(Path dir, TestCa ca, String username, String password) throws Exception {
    return start(dir, ca, username, password, null, null);
  }

  /**
   * A registry that names {@code httpHost} (distribution's http.host, e.g. a proxy in front of it)
   * in the upload locations it hands out, instead of its own address.
   */
  public static RegistryServer namingHost(Path dir, TestCa ca, String username, String password, String httpHost)
      throws Exception {
    return start(dir, ca, username, password, httpHost, null);
  }

  /** A registry that sends clients to the token service at {@code realm} (distribution's token auth). */
  public static RegistryServer withTokenRealm(Path dir, TestCa ca, String realm) throws Exception {
    return start(dir, ca, "unused", "unused", null, realm);
  }

  private static RegistryServer start(Path dir, TestCa ca, String username, String password, String httpHost,
      String tokenRealm) throws Exception {
    Files.createDirectories(dir);
    TestCa.ServerCertificate cert = ca.issue("registry");
    Path htpasswd = dir.resolve("htpasswd");
    Process hash = new ProcessBuilder("htpasswd", "-Bbn", username, password).start();
    Files.write(htpasswd, hash.getInputStream().readAllBytes());
    if (hash.waitFor() != 0) {
      throw new IOException("htpasswd failed: run scripts/install-test-tools.sh");
    }
    int port;
    try (var socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    String auth = tokenRealm == null ? "  htpasswd: {realm: stasis-test, path: %s}\n".formatted(htpasswd)
        : "  token: {realm: '%s', service: stasis-test, issuer: stasis-test, rootcertbundle: %s}\n"
            .formatted(tokenRealm, ca.certificate());
    Path config = dir.resolve("config.yml");
    Files.writeString(config, """
        version: 0.1
        log: {level: warn}
        storage:
          filesystem: {rootdirectory: %s}
          delete: {enabled: true}
        http:
          addr: 127.0.0.1:%d
          tls: {certificate: %s, key: %s}
        %sauth:
        %s""".formatted(dir.resolve("data"), port, cert.certificate(), cert.key(),
        httpHost == null ? "" : "  host: " + httpHost + "\n", auth));
    Process process = new ProcessBuilder("docker-registry", "serve", config.toString())
        .redirectErrorStream(true).redirectOutput(dir.resolve("registry.log").toFile()).start();
    var registry = new RegistryServer(process, port, username, password,
        dev.stasis.tls.TlsTrust.trusting(Files.readAllBytes(ca.certificate())));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (true) {
      try {
        int status = registry.get("/v2/", null).statusCode();
        if (status == 200 || (tokenRealm != null && status == 401)) {
          return registry;
        }
      } catch (IOException e) {
        if (!process.isAlive() || System.nanoTime() > deadline) {
          registry.close();
          throw new IOException("docker-registry did not start: " + Files.readString(dir.resolve("registry.log")), e);
        }
      }
      Thread.sleep(100);
    }
  }

  /** The registry's url for CheckpointStorage.spec.registry, with a repository prefix. */
  public String url(String prefix) {
    return "https://127.0.0.1:" + port + "/" + prefix;
  }

  public String host() {
    return "127.0.0.1:" + port;
  }

  /** GET as the registry's user, with the given Accept header (may be null). */
  public HttpResponse<byte[]> get(String path, String accept) throws IOException, InterruptedException {
    var request = HttpRequest.newBuilder(URI.create("https://127.0.0.1:" + port + path)).timeout(Duration.ofSeconds(10))
        .header("Authorization", "Basic " + Base64.getEncoder().encodeToString((username + ":" + password).getBytes()));
    if (accept != null) {
      request.header("Accept", accept);
    }
    return http.send(request.GET().build(), HttpResponse.BodyHandlers.ofByteArray());
  }

  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
