package dev.stasis.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import dev.stasis.testing.RegistryServer;
import dev.stasis.testing.TestCa;
import dev.stasis.tls.TlsTrust;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The registry's credentials, and the checkpoint images (a container's memory), go to the
 * registry's own host only: not to a token service elsewhere that a registry names, not to an
 * upload location on another host, not across a redirect. A real docker-registry is configured to
 * name another host; "another host" is a recorder on 127.0.0.2 that notes what reaches it.
 */
class RegistryClientIT {
  static final String USER = "stasis";
  static final String PASSWORD = "push-secret";

  @TempDir Path dir;
  TestCa ca;
  SSLContext trust;
  Recorder elsewhere;

  @BeforeEach
  void start() throws Exception {
    ca = TestCa.create(dir.resolve("ca"), "registry-ca");
    trust = TlsTrust.trusting(Files.readAllBytes(ca.certificate()));
    elsewhere = Recorder.start();
  }

  @AfterEach
  void stop() {
    elsewhere.close();
  }

  @Test
  void credentialsGoToATokenServiceOnlyOnTheRegistrysHost() throws Exception {
    try (var registry = RegistryServer.withTokenRealm(dir.resolve("registry"), ca, elsewhere.url() + "/token")) {
      assertThatThrownBy(() -> RegistryClient.open(registry(registry.url("stasis")), "stasis/jobs/sim"))
          .isInstanceOfSatisfying(RegistryException.class, e -> assertThat(e.reason()).isEqualTo("RegistryUnauthorized"))
          .hasMessageContaining("it is at " + elsewhere.origin() + ", not on the registry's host");

      assertThat(elsewhere.requests).as("the token service was asked, without credentials")
          .singleElement().satisfies(r -> {
            assertThat(r.path()).startsWith("/token?");
            assertThat(r.authorization()).isNull();
          });
    }
  }

  @Test
  void anUploadLocationOnAnotherHostGetsNeitherTheCredentialsNorTheImage() throws Exception {
    try (var registry = RegistryServer.namingHost(dir.resolve("registry"), ca, USER, PASSWORD, elsewhere.url())) {
      RegistryClient client = RegistryClient.open(registry(registry.url("stasis")), "stasis/jobs/sim");

      assertThatThrownBy(() -> client.pushBlob("a container's memory".getBytes(StandardCharsets.UTF_8)))
          .isInstanceOfSatisfying(RegistryException.class, e -> assertThat(e.reason()).isEqualTo("RegistryPushFailed"))
          .hasMessageContaining("asked to send the upload to " + elsewhere.origin() + ", another host")
          .hasMessageContaining("http.host");
      assertThat(elsewhere.requests).as("nothing reached the other host").isEmpty();
    }
  }

  /** A registry whose manifest reads redirect to another host (a real one only redirects blob reads). */
  @Test
  void aRedirectToAnotherHostIsFollowedWithoutTheCredentials() throws Exception {
    HttpServer redirecting = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    redirecting.createContext("/", exchange -> {
      boolean authorized = exchange.getRequestHeaders().getFirst("Authorization") != null;
      if (exchange.getRequestURI().getPath().equals("/v2/")) {
        exchange.getResponseHeaders().add("WWW-Authenticate", "Basic realm=\"test\"");
        exchange.sendResponseHeaders(authorized ? 200 : 401, -1);
      } else {
        exchange.getResponseHeaders().add("Location", elsewhere.url() + exchange.getRequestURI().getPath());
        exchange.sendResponseHeaders(307, -1);
      }
      exchange.close();
    });
    redirecting.start();
    try {
      Registry registry = Registry.of("http://127.0.0.1:" + redirecting.getAddress().getPort() + "/stasis", USER,
          PASSWORD, TlsTrust.system());
      RegistryClient client = RegistryClient.open(registry, "stasis/jobs/sim");

      assertThatThrownBy(() -> client.manifest("app")).isInstanceOf(RegistryException.class);
      assertThat(elsewhere.requests).singleElement().satisfies(r -> {
        assertThat(r.path()).isEqualTo("/v2/stasis/jobs/sim/manifests/app");
        assertThat(r.authorization()).as("no credentials across the redirect").isNull();
      });
    } finally {
      redirecting.stop(0);
    }
  }

  private Registry registry(String url) {
    return Registry.of(url, USER, PASSWORD, trust);
  }

  /** Another host: notes each request and its Authorization header, and answers 401. */
  record Recorder(HttpServer server, List<Request> requests) implements AutoCloseable {
    record Request(String method, String path, String authorization) {}

    static Recorder start() throws IOException {
      HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.2", 0), 0);
      List<Request> requests = new CopyOnWriteArrayList<>();
      server.createContext("/", exchange -> {
        requests.add(new Request(exchange.getRequestMethod(), exchange.getRequestURI().toString(),
            exchange.getRequestHeaders().getFirst("Authorization")));
        exchange.getRequestBody().readAllBytes();
        exchange.sendResponseHeaders(401, -1);
        exchange.close();
      });
      server.start();
      return new Recorder(server, requests);
    }

    String url() {
      return "http://127.0.0.2:" + server.getAddress().getPort();
    }

    String origin() {
      return url();
    }

    @Override
    public void close() {
      server.stop(0);
    }
  }
}
