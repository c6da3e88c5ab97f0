package dev.stasis.agent.profile;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.dataformat.toml.TomlMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * CRI-O's configuration as CRI-O itself reports it: {@code GET /config} on its socket answers the
 * whole configuration it runs with (TOML, defaults and drop-in files included, and the changes it
 * made when it started, such as checkpoint and restore turned off for want of CRIU).
 */
final class CrioConfig {
  private static final TomlMapper TOML = new TomlMapper();
  private static final int MAX_ANSWER = 4 << 20;

  private CrioConfig() {}

  static Map<String, Object> ask(Path socket, Duration timeout) throws IOException {
    SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
    CompletableFuture<byte[]> answer = CompletableFuture.supplyAsync(() -> exchange(channel, socket));
    try {
      return parse(answer.get(timeout.toMillis(), TimeUnit.MILLISECONDS));
    } catch (TimeoutException e) {
      throw new IOException("CRI-O did not answer on " + socket + " within " + timeout.toSeconds() + "s");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause() instanceof java.io.UncheckedIOException u ? u.getCause() : e.getCause();
      throw cause instanceof IOException io ? io : new IOException(cause);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while asking CRI-O");
    } finally {
      channel.close();
    }
  }

  // HTTP/1.0: the answer comes whole, not chunked, and the connection closes after it.
  private static byte[] exchange(SocketChannel channel, Path socket) {
    try {
      channel.connect(UnixDomainSocketAddress.of(socket));
      channel.write(ByteBuffer.wrap("GET /config HTTP/1.0\r\nHost: crio\r\n\r\n".getBytes(StandardCharsets.US_ASCII)));
      ByteArrayOutputStream read = new ByteArrayOutputStream();
      ByteBuffer buffer = ByteBuffer.allocate(64 * 1024);
      while (channel.read(buffer) >= 0 && read.size() < MAX_ANSWER) {
        read.write(buffer.array(), 0, buffer.position());
        buffer.clear();
      }
      return read.toByteArray();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static Map<String, Object> parse(byte[] response) throws IOException {
    String text = new String(response, StandardCharsets.UTF_8);
    int end = text.indexOf("\r\n\r\n");
    String status = text.lines().findFirst().orElse("");
    if (end < 0 || !status.matches("HTTP/1\\.[01] 200.*")) {
      throw new IOException("CRI-O answered GET /config with '" + status + "'");
    }
    return TOML.readValue(text.substring(end + 4), new TypeReference<Map<String, Object>>() {});
  }
}
