package dev.stasis.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP proxy on 127.0.0.1 in front of a local server, passing what clients send at a bounded
 * rate: a slow link, so that a test can act while an upload is under way.
 */
public final class ThrottledProxy implements AutoCloseable {
  private final ServerSocket listener;
  private final InetSocketAddress target;
  private final long bytesPerSecond;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();
  private final Thread acceptor;

  private ThrottledProxy(ServerSocket listener, InetSocketAddress target, long bytesPerSecond) {
    this.listener = listener;
    this.target = target;
    this.bytesPerSecond = bytesPerSecond;
    this.acceptor = new Thread(this::accept, "throttled-proxy");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /** Proxies {@code http://127.0.0.1:PORT} (an endpoint URL) at {@code bytesPerSecond} upstream. */
  public static ThrottledProxy to(String endpoint, long bytesPerSecond) throws IOException {
    URI uri = URI.create(endpoint);
    ServerSocket listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    return new ThrottledProxy(listener, new InetSocketAddress(uri.getHost(), uri.getPort()), bytesPerSecond);
  }

  public String endpoint() {
    return "http://127.0.0.1:" + listener.getLocalPort();
  }

  private void accept() {
    while (!listener.isClosed()) {
      try {
        Socket client = listener.accept();
        Socket server = new Socket(target.getAddress(), target.getPort());
        sockets.add(client);
        sockets.add(server);
        pump(client, server, bytesPerSecond);
        pump(server, client, 0);
      } catch (IOException e) {
        return; // closed
      }
    }
  }

  private void pump(Socket from, Socket to, long rate) throws IOException {
    InputStream in = from.getInputStream();
    OutputStream out = to.getOutputStream();
    Thread t = new Thread(() -> {
      byte[] buffer = new byte[64 << 10];
      long started = System.nanoTime();
      long sent = 0;
      try {
        for (int n; (n = in.read(buffer)) >= 0; ) {
          out.write(buffer, 0, n);
          out.flush();
          sent += n;
          if (rate > 0) {
            long due = started + sent * 1_000_000_000L / rate;
            long wait = due - System.nanoTime();
            if (wait > 0) {
              Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            }
          }
        }
      } catch (IOException | InterruptedException e) {
        // one side closed
      } finally {
        closeQuietly(from);
        closeQuietly(to);
      }
    }, "throttled-proxy-pump");
    t.setDaemon(true);
    t.start();
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
    sockets.forEach(ThrottledProxy::closeQuietly);
  }
}
