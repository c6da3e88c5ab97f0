package dev.stasis.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * The HTTP port of a Stasis process: {@code /metrics} for Prometheus, {@code /healthz} (the process
 * answers: a liveness probe must not restart it for an API server outage) and {@code /readyz}
 * (its informers are started and healthy, and it is not shutting down).
 */
public final class MetricsServer implements AutoCloseable {
  /** Why the process is not ready, or empty when it is. */
  public interface Readiness extends Supplier<Optional<String>> {}

  private static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";

  private final HttpServer server;
  private final PrometheusMeterRegistry registry;

  private MetricsServer(HttpServer server, PrometheusMeterRegistry registry) {
    this.server = server;
    this.registry = registry;
  }

  /** Serves on {@code host:port} (port 0: any free port) every meter of this process. */
  public static MetricsServer start(String host, int port, Readiness readiness) throws IOException {
    HttpServer server;
    try {
      server = HttpServer.create(new InetSocketAddress(host, port), 16);
    } catch (IOException e) {
      throw new IOException("cannot serve metrics on " + host + ":" + port + " (" + e.getMessage()
          + "): choose another port with --metrics-port", e);
    }
    PrometheusMeterRegistry registry = StasisMetrics.prometheus();
    server.createContext("/metrics", exchange -> respond(exchange, 200, PROMETHEUS_TEXT, registry.scrape()));
    server.createContext("/healthz", exchange -> respond(exchange, 200, "text/plain", "ok\n"));
    server.createContext("/readyz", exchange -> {
      Optional<String> problem = readiness.get();
      respond(exchange, problem.isEmpty() ? 200 : 503, "text/plain", problem.map(p -> p + "\n").orElse("ok\n"));
    });
    server.setExecutor(Executors.newFixedThreadPool(2, r -> {
      Thread t = new Thread(r, "metrics-http");
      t.setDaemon(true);
      return t;
    }));
    server.start();
    return new MetricsServer(server, registry);
  }

  public int port() {
    return server.getAddress().getPort();
  }

  private static void respond(HttpExchange exchange, int status, String contentType, String body) throws IOException {
    try (exchange) {
      byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
      exchange.getResponseHeaders().set("Content-Type", contentType);
      if (exchange.getRequestMethod().equals("HEAD")) {
        exchange.sendResponseHeaders(status, -1);
        return;
      }
      exchange.sendResponseHeaders(status, bytes.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(bytes);
      }
    }
  }

  @Override
  public void close() {
    server.stop(0);
    ((ExecutorService) server.getExecutor()).shutdownNow();
    StasisMetrics.detach(registry);
  }
}
