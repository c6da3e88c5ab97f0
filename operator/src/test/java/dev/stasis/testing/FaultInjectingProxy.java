package dev.stasis.testing;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.internal.SSLUtils;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import javax.net.SocketFactory;
import javax.net.ssl.SSLContext;

/**
 * An HTTP proxy on 127.0.0.1 in front of a local server (the S3 test server, or the test's
 * kube-apiserver, which it reaches over TLS as the admin) that injects faults into the requests a
 * rule matches: answer 500, answer late and slowly, or drop the connection without an answer;
 * {@link #stop()} makes the server look gone. One request per connection (it asks for
 * {@code Connection: close}), so every request is seen and the faults are deterministic.
 */
public final class FaultInjectingProxy implements AutoCloseable {
  /** What a request looks like to the rules: its method, its target (path and query) and its headers. */
  public record Request(String method, String target, String head) {
    /** The value of header {@code name} (any case), if the request has it. */
    public Optional<String> header(String name) {
      for (String line : head.split("\r\n")) {
        int colon = line.indexOf(':');
        if (colon > 0 && line.substring(0, colon).trim().equalsIgnoreCase(name)) {
          return Optional.of(line.substring(colon + 1).trim());
        }
      }
      return Optional.empty();
    }

    /** A part of a multipart upload, or a whole object put in one request. */
    public boolean isUpload() {
      return method.equals("PUT");
    }

    /** A read of one object ({@code GET /bucket/key}), not of a bucket listing ({@code GET /bucket?...}). */
    public boolean isDownload() {
      String path = target.contains("?") ? target.substring(0, target.indexOf('?')) : target;
      return method.equals("GET") && path.indexOf('/', 1) > 0 && path.indexOf('/', 1) < path.length() - 1;
    }

    /** A write of the status of one of Stasis' resources ({@code checkpoints}, {@code restores}) on the API server. */
    public boolean isStatusWrite(String plural, String namespace, String name) {
      return method.equals("PUT") && target.startsWith("/apis/stasis.dev/v1alpha1/namespaces/" + namespace + "/"
          + plural + "/" + name + "/status");
    }
  }

  private enum Fault { PASS, FAIL_500, SLOW, DROP }

  private record Rule(Predicate<Request> matches, Fault fault, Duration delay, long bytesPerSecond) {}

  private final ServerSocket listener;
  private final InetSocketAddress target;
  private final SocketFactory upstream;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();
  private final AtomicInteger faulted = new AtomicInteger();
  private final List<Request> requests = new CopyOnWriteArrayList<>();
  private volatile Rule rule = new Rule(r -> false, Fault.PASS, Duration.ZERO, 0);
  private volatile boolean stopped;

  private FaultInjectingProxy(ServerSocket listener, InetSocketAddress target, SocketFactory upstream) {
    this.listener = listener;
    this.target = target;
    this.upstream = upstream;
    Thread acceptor = new Thread(this::accept, "fault-proxy");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /** Proxies {@code http://127.0.0.1:PORT} (an endpoint URL); it passes everything until told otherwise. */
  public static FaultInjectingProxy to(String endpoint) throws IOException {
    URI uri = URI.create(endpoint);
    ServerSocket listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    return new FaultInjectingProxy(listener, new InetSocketAddress(uri.getHost(), uri.getPort()),
        SocketFactory.getDefault());
  }

  /**
   * Proxies the API server {@code admin} talks to: clients speak plain HTTP to the proxy (see
   * {@link #kubeconfig}), the proxy speaks TLS to the API server with the admin's certificate.
   */
  public static FaultInjectingProxy toApiServer(KubernetesClient admin) throws Exception {
    Config config = admin.getConfiguration();
    URI uri = URI.create(config.getMasterUrl());
    SSLContext tls = SSLUtils.sslContext(SSLUtils.keyManagers(config), SSLUtils.trustManagers(config));
    ServerSocket listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    return new FaultInjectingProxy(listener, new InetSocketAddress(uri.getHost(), uri.getPort()), tls.getSocketFactory());
  }

  /** A kubeconfig that reaches the API server through this proxy (see {@link #toApiServer}). */
  public Path kubeconfig(Path file) throws IOException {
    return Files.writeString(file, """
        apiVersion: v1
        kind: Config
        clusters: [{name: proxied, cluster: {server: "%s"}}]
        users: [{name: proxied, user: {}}]
        contexts: [{name: proxied, context: {cluster: proxied, user: proxied}}]
        current-context: proxied
        """.formatted(endpoint()));
  }

  /** A client that reaches the API server through this proxy (see {@link #toApiServer}). */
  public KubernetesClient client() {
    return new KubernetesClientBuilder().withConfig(new ConfigBuilder(Config.empty()).withMasterUrl(endpoint()).build())
        .build();
  }

  public String endpoint() {
    return "http://127.0.0.1:" + listener.getLocalPort();
  }

  /** Everything passes again, and the server is reachable again after {@link #stop()}. */
  public void pass() {
    stopped = false;
    rule = new Rule(r -> false, Fault.PASS, Duration.ZERO, 0);
  }

  /** Matching requests are answered {@code 500 InternalError} without reaching the server. */
  public void fail500(Predicate<Request> matching) {
    rule = new Rule(matching, Fault.FAIL_500, Duration.ZERO, 0);
  }

  /** Matching requests wait {@code delay}, then pass at {@code bytesPerSecond} both ways. */
  public void slow(Predicate<Request> matching, Duration delay, long bytesPerSecond) {
    rule = new Rule(matching, Fault.SLOW, delay, bytesPerSecond);
  }

  /** Matching requests lose their connection without an answer. */
  public void drop(Predicate<Request> matching) {
    rule = new Rule(matching, Fault.DROP, Duration.ZERO, 0);
  }

  /** The server is gone: open connections are cut, new ones closed at once, until {@link #pass()}. */
  public void stop() {
    stopped = true;
    sockets.forEach(FaultInjectingProxy::closeQuietly);
    sockets.clear();
  }

  /** How many requests a fault was injected into so far. */
  public int faulted() {
    return faulted.get();
  }

  /** Every request that came through so far, in the order they arrived. */
  public List<Request> requests() {
    return List.copyOf(requests);
  }

  private void accept() {
    while (!listener.isClosed()) {
      try {
        Socket client = listener.accept();
        if (stopped) {
          closeQuietly(client);
          continue;
        }
        sockets.add(client);
        Thread t = new Thread(() -> serve(client), "fault-proxy-connection");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        return; // closed
      }
    }
  }

  private void serve(Socket client) {
    Socket server = null;
    try {
      InputStream fromClient = client.getInputStream();
      byte[] head = readHead(fromClient);
      if (head == null) {
        return;
      }
      String text = new String(head, StandardCharsets.ISO_8859_1);
      String[] requestLine = text.substring(0, text.indexOf("\r\n")).split(" ");
      Request request = new Request(requestLine[0], requestLine.length > 1 ? requestLine[1] : "/", text);
      requests.add(request);
      Rule current = rule;
      Fault fault = current.matches().test(request) ? current.fault() : Fault.PASS;
      if (fault != Fault.PASS) {
        faulted.incrementAndGet();
      }
      switch (fault) {
        case DROP -> {
          return;
        }
        case FAIL_500 -> {
          drainBody(text, fromClient); // answered mid-body, a client sees a broken pipe instead of the 500
          byte[] body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code>"
              + "<Message>injected by the test</Message></Error>").getBytes(StandardCharsets.UTF_8);
          OutputStream out = client.getOutputStream();
          out.write(("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\nContent-Length: "
              + body.length + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
          out.write(body);
          out.flush();
          return;
        }
        case SLOW -> Thread.sleep(current.delay().toMillis());
        case PASS -> { }
      }
      long rate = fault == Fault.SLOW ? current.bytesPerSecond() : 0;
      server = upstream.createSocket(target.getAddress(), target.getPort());
      sockets.add(server);
      server.getOutputStream().write(withConnectionClose(text).getBytes(StandardCharsets.ISO_8859_1));
      Socket upstream = server;
      Thread up = new Thread(() -> pump(fromClient, upstream, rate), "fault-proxy-up");
      up.setDaemon(true);
      up.start();
      pump(server.getInputStream(), client, rate);
    } catch (IOException | InterruptedException | RuntimeException e) {
      // a side closed, or the proxy was stopped
    } finally {
      closeQuietly(client);
      if (server != null) {
        closeQuietly(server);
        sockets.remove(server);
      }
      sockets.remove(client);
    }
  }

  /** The request head up to the blank line, or null when the client sent nothing. */
  private static byte[] readHead(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int matched = 0;
    byte[] end = {'\r', '\n', '\r', '\n'};
    for (int b; (b = in.read()) >= 0; ) {
      head.write(b);
      matched = b == end[matched] ? matched + 1 : (b == '\r' ? 1 : 0);
      if (matched == end.length) {
        return head.toByteArray();
      }
    }
    return null;
  }

  /** Reads the request's body, unless the client waits for {@code 100 Continue} before sending it. */
  private static void drainBody(String head, InputStream in) throws IOException {
    long length = 0;
    boolean chunked = false;
    for (String line : head.split("\r\n")) {
      String lower = line.toLowerCase(Locale.ROOT);
      if (lower.startsWith("expect:") && lower.contains("100-continue")) {
        return;
      }
      if (lower.startsWith("content-length:")) {
        length = Long.parseLong(line.substring("content-length:".length()).trim());
      }
      chunked |= lower.startsWith("transfer-encoding:") && lower.contains("chunked");
    }
    if (chunked) {
      byte[] end = "\r\n0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1);
      for (int matched = 0, b; matched < end.length && (b = in.read()) >= 0; ) {
        matched = b == end[matched] ? matched + 1 : (b == end[0] ? 1 : 0);
      }
      return;
    }
    in.skipNBytes(length);
  }

  /**
   * The request head with its hop-by-hop headers replaced: one request per connection, and no
   * upgrade to HTTP/2, which a TLS server does not offer in plain text. A WebSocket upgrade (a
   * watch) passes as it is: after its answer the connection carries the stream both ways.
   */
  private static String withConnectionClose(String head) {
    if (head.toLowerCase(Locale.ROOT).contains("\r\nupgrade: websocket")) {
      return head;
    }
    StringBuilder rewritten = new StringBuilder();
    for (String line : head.split("\r\n")) {
      String lower = line.toLowerCase(Locale.ROOT);
      if (!lower.startsWith("connection:") && !lower.startsWith("upgrade:") && !lower.startsWith("http2-settings:")) {
        rewritten.append(line).append("\r\n");
      }
    }
    return rewritten.append("Connection: close\r\n\r\n").toString();
  }

  private static void pump(InputStream in, Socket to, long bytesPerSecond) {
    byte[] buffer = new byte[64 << 10];
    // Throttled, about ten reads a second, so that the rate holds for small transfers too.
    int chunk = bytesPerSecond > 0 ? (int) Math.min(buffer.length, Math.max(1024, bytesPerSecond / 10)) : buffer.length;
    long started = System.nanoTime();
    long sent = 0;
    try {
      OutputStream out = to.getOutputStream();
      for (int n; (n = in.read(buffer, 0, chunk)) >= 0; ) {
        out.write(buffer, 0, n);
        out.flush();
        sent += n;
        if (bytesPerSecond > 0) {
          long wait = started + sent * 1_000_000_000L / bytesPerSecond - System.nanoTime();
          if (wait > 0) {
            Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
          }
        }
      }
      to.shutdownOutput();
    } catch (IOException | InterruptedException e) {
      closeQuietly(to);
    }
  }

  private static void closeQuietly(Socket socket) {
    try {
      socket.close();
    } catch (IOException e) {
      // already closed
    }
  }

  @Override
  public void close() throws IOException {
    listener.close();
    stop();
  }
}
