package dev.stasis.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP relay in front of a real kubelet that keeps the checkpoint archives the kubelet writes:
 * the moment the kubelet starts answering, and before the answer reaches the client, every
 * archive in the kubelet's checkpoint folder is hard-linked into a witness folder. The agent
 * deletes its archive once stored; the link keeps the very bytes the kubelet wrote, for tests to
 * compare with what was stored. TLS passes through untouched: the client talks to the kubelet.
 */
public final class KubeletTap implements AutoCloseable {
  private final ServerSocket listener;
  private final InetSocketAddress kubelet;
  private final Path checkpointDir;
  private final Path witnessDir;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();

  private KubeletTap(ServerSocket listener, InetSocketAddress kubelet, Path checkpointDir, Path witnessDir) {
    this.listener = listener;
    this.kubelet = kubelet;
    this.checkpointDir = checkpointDir;
    this.witnessDir = witnessDir;
    Thread acceptor = new Thread(this::accept, "kubelet-tap");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  /**
   * Listens on the kubelet's own address (its certificate names that address), on a free port;
   * the witness folder is beside the checkpoint folder (hard links stay on one file system).
   */
  public static KubeletTap in(URI kubeletUrl, Path checkpointDir) throws IOException {
    Path witnessDir = Files.createTempDirectory(checkpointDir.getParent(), "checkpoints-witnessed-");
    InetAddress address = InetAddress.getByName(kubeletUrl.getHost());
    return new KubeletTap(new ServerSocket(0, 50, address), new InetSocketAddress(address, kubeletUrl.getPort()),
        checkpointDir, witnessDir);
  }

  public URI url() {
    return URI.create("https://" + kubelet.getHostString() + ":" + listener.getLocalPort());
  }

  /** The kubelet's archive of that name as the kubelet wrote it. */
  public Path witnessed(String archiveName) {
    return witnessDir.resolve(archiveName);
  }

  private void accept() {
    while (!listener.isClosed()) {
      try {
        Socket client = listener.accept();
        Socket server = new Socket(kubelet.getAddress(), kubelet.getPort());
        sockets.add(client);
        sockets.add(server);
        pump(client, server, false);
        pump(server, client, true);
      } catch (IOException e) {
        // closed
      }
    }
  }

  private void pump(Socket from, Socket to, boolean fromKubelet) {
    Thread thread = new Thread(() -> {
      byte[] buffer = new byte[1 << 16];
      try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
        int n;
        while ((n = in.read(buffer)) > 0) {
          if (fromKubelet) {
            keepArchives();
          }
          out.write(buffer, 0, n);
          out.flush();
        }
      } catch (IOException e) {
        // one side closed
      } finally {
        close(from);
        close(to);
      }
    }, "kubelet-tap-pump");
    thread.setDaemon(true);
    thread.start();
  }

  /** The kubelet answers a checkpoint only after the runtime wrote the archive whole. */
  private synchronized void keepArchives() throws IOException {
    if (!Files.isDirectory(checkpointDir)) {
      return;
    }
    try (var archives = Files.list(checkpointDir)) {
      for (Path archive : archives.toList()) {
        Path witness = witnessDir.resolve(archive.getFileName());
        try {
          if (!Files.exists(witness)) {
            Files.createLink(witness, archive);
          }
        } catch (java.nio.file.NoSuchFileException e) {
          // an earlier archive, deleted by the agent meanwhile: kept already
        }
      }
    }
  }

  private static void close(Socket socket) {
    try {
      socket.close();
    } catch (IOException e) {
      // already closed
    }
  }

  @Override
  public void close() throws IOException {
    listener.close();
    sockets.forEach(KubeletTap::close);
  }
}
