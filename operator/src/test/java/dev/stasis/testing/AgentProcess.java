package dev.stasis.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.cli.Main;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A node's agent as a process of its own ({@code java -jar stasis.jar agent --node NAME}), as a
 * DaemonSet runs it: several of them are several nodes on this machine, each with its own work
 * folder and key, running the machine's CRIU and allowed every namespace's host processes. A test
 * SIGKILLs it by its PID (a node or an agent lost) and starts another for the same node; closing it
 * SIGKILLs it if it still runs. {@link #start} returns once the agent answers /readyz.
 */
public final class AgentProcess implements AutoCloseable {
  private static final Duration READY_TIMEOUT = Duration.ofSeconds(90);

  private final String node;
  private final Process process;
  private final Path log;

  private AgentProcess(String node, Process process, Path log) {
    this.node = node;
    this.process = process;
    this.log = log;
  }

  /**
   * @param kubeconfig how it reaches the API server (the test control plane's, or a proxy's)
   * @param log where its output goes (appended, so that a restarted agent's follows the first one's)
   * @param flags more agent flags, such as {@code --node-labels=...}
   */
  public static AgentProcess start(String node, Path workDir, Path kubeconfig, Path log, String... flags)
      throws IOException {
    int port;
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = socket.getLocalPort();
    }
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        // C1 only: the agent is up in about half the time on a small machine.
        "-XX:TieredStopAtLevel=1", "-jar", TestControlPlane.stasisJar().toString(), "agent", "--node=" + node,
        "--work-dir=" + workDir, "--criu=" + Main.criuPath(null), "--allow-host-processes=*",
        "--kubeconfig=" + kubeconfig, "--metrics-address=127.0.0.1", "--metrics-port=" + port));
    command.addAll(List.of(flags));
    Process process = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
    AgentProcess agent = new AgentProcess(node, process, log);
    try {
      await().atMost(READY_TIMEOUT).until(() -> {
        assertThat(process.isAlive()).as("agent %s exited:\n%s", node, Files.readString(log)).isTrue();
        try {
          return MetricsEndpoint.get(port, "/readyz").status() == 200;
        } catch (IOException e) {
          return false; // not listening yet
        }
      });
    } catch (RuntimeException | Error e) {
      agent.close();
      throw e;
    }
    return agent;
  }

  public String node() {
    return node;
  }

  public long pid() {
    return process.pid();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  public Path log() {
    return log;
  }

  /** SIGKILL, by its PID, and waits until it is gone: what the CRIU it started does, it does on its own. */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    assertThat(process.waitFor(10, TimeUnit.SECONDS)).as("agent %s (PID %d) ended", node, pid()).isTrue();
  }

  @Override
  public void close() {
    if (process.isAlive()) {
      try {
        kill();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
