package dev.stasis.agent.profile;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.agent.RuntimeSettings;
import dev.stasis.api.NodeProfileSpec.RuntimeInfo;
import dev.stasis.api.NodeProfileSpec.RuntimeRestore;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The runtime's rules for restores from checkpoint images, against configuration files as containerd
 * reads them (under a host root) and CRI-O's answer on its socket (a stand-in that answers as CRI-O's
 * GET /config does: CRI-O cannot run here).
 */
class RuntimeProbeTest {
  @TempDir Path host;

  RuntimeInfo probe(String reported) {
    return probe(reported, RuntimeSettings.defaults());
  }

  RuntimeInfo probe(String reported, RuntimeSettings settings) {
    return new RuntimeProbe(host, settings).probe(node(reported));
  }

  static Node node(String containerRuntimeVersion) {
    return new NodeBuilder().withNewMetadata().withName("n").endMetadata().withNewStatus().withNewNodeInfo()
        .withContainerRuntimeVersion(containerRuntimeVersion).endNodeInfo().endStatus().build();
  }

  void config(String path, String toml) throws IOException {
    Path file = host.resolve(path.substring(1));
    Files.createDirectories(file.getParent());
    Files.writeString(file, toml);
  }

  @Test
  void theKubeletsReportNamesTheRuntimeAndItsVersion() throws Exception {
    config("/etc/containerd/config.toml", "version = 3\n");
    RuntimeInfo runtime = probe("containerd://v2.3.4");
    assertThat(runtime.name).isEqualTo("containerd");
    assertThat(runtime.version).isEqualTo("2.3.4");
  }

  @Test
  void containerd234RestoresOnlyWithTheSettingOn() throws Exception {
    config("/etc/containerd/config.toml", """
        version = 3
        [plugins."io.containerd.cri.v1.runtime"]
          enable_experimental_restore_via_create = true
        """);
    RuntimeRestore on = probe("containerd://2.3.4").restore;
    assertThat(on.restores()).isTrue();
    assertThat(on.source).isEqualTo(RuntimeRestore.FROM_CONFIG);
    assertThat(on.message).isEqualTo("containerd 2.3.4 restores from checkpoint images:"
        + " enable_experimental_restore_via_create = true in /etc/containerd/config.toml");

    config("/etc/containerd/config.toml", """
        version = 3
        [plugins."io.containerd.cri.v1.runtime"]
          enable_selinux = false
        """);
    RuntimeRestore off = probe("containerd://2.3.4").restore;
    assertThat(off.restores()).isFalse();
    assertThat(off.source).isEqualTo(RuntimeRestore.FROM_CONFIG);
    assertThat(off.message).isEqualTo("containerd 2.3.4 restores from checkpoint images only with"
        + " enable_experimental_restore_via_create = true, and it is not set (default false) in /etc/containerd/config.toml");
    assertThat(off.remedy).isEqualTo("set enable_experimental_restore_via_create = true in"
        + " [plugins.\"io.containerd.cri.v1.runtime\"] of /etc/containerd/config.toml and restart containerd");
  }

  @Test
  void aVersion2ConfigurationIsMigratedAsContainerdMigratesIt() throws Exception {
    config("/etc/containerd/config.toml", """
        version = 2
        [plugins."io.containerd.grpc.v1.cri"]
          enable_experimental_restore_via_create = true
        """);
    assertThat(probe("containerd://2.2.7").restore.restores()).isTrue();
  }

  @Test
  void importedFilesReplaceThePluginsTableInOrder() throws Exception {
    config("/etc/containerd/config.toml", """
        version = 3
        imports = ["conf.d/*.toml"]
        [plugins."io.containerd.cri.v1.runtime"]
          enable_experimental_restore_via_create = false
        """);
    config("/etc/containerd/conf.d/10-restore.toml", """
        version = 3
        [plugins."io.containerd.cri.v1.runtime"]
          enable_experimental_restore_via_create = true
        """);
    RuntimeRestore restore = probe("containerd://2.3.4").restore;
    assertThat(restore.restores()).isTrue();
    assertThat(restore.message).endsWith("in /etc/containerd/conf.d/10-restore.toml");

    // A later file's table replaces the whole table, as containerd's merge of plugin tables does.
    config("/etc/containerd/conf.d/20-other.toml", """
        version = 3
        [plugins."io.containerd.cri.v1.runtime"]
          enable_selinux = false
        """);
    assertThat(probe("containerd://2.3.4").restore.message)
        .endsWith("not set (default false) in /etc/containerd/conf.d/20-other.toml");
  }

  @Test
  void criuTurnedOffMeansNoRestore() throws Exception {
    config("/etc/containerd/config.toml", """
        version = 3
        [plugins."io.containerd.cri.v1.runtime"]
          enable_criu = false
          enable_experimental_restore_via_create = true
        """);
    RuntimeRestore restore = probe("containerd://2.3.4").restore;
    assertThat(restore.restores()).isFalse();
    assertThat(restore.remedy).startsWith("remove enable_criu = false and set enable_experimental_restore_via_create");
  }

  @Test
  void aConfigurationTheAgentCannotReadIsSaidSo() {
    RuntimeRestore restore = probe("containerd://2.3.4").restore;
    assertThat(restore.restores()).isFalse();
    assertThat(restore.source).isEqualTo(RuntimeRestore.FROM_VERSION);
    assertThat(restore.message).contains("cannot read its configuration").contains("/etc/containerd/config.toml");
    assertThat(restore.remedy).contains("--containerd-config").contains("--runtime-restore=enabled");
  }

  @ParameterizedTest(name = "containerd {0}: restores {1}")
  @CsvSource({
      "2.0.7, false", "2.1.0, true", "2.1.9+unknown, true", "2.2.6, true", "2.3.0, true", "2.3.3, true", "2.4.0, false",
      "2.4.1, false"})
  void containerdVersionsWithoutTheSettingFollowTheirVersionsRule(String version, boolean restores) {
    RuntimeRestore restore = probe("containerd://" + version).restore;
    assertThat(restore.restores()).as(restore.message).isEqualTo(restores);
    assertThat(restore.source).isEqualTo(RuntimeRestore.FROM_VERSION);
  }

  @Test
  void theAdministratorsStatementIsTakenAndSaidToBeTheirs() {
    RuntimeRestore restore = probe("containerd://2.3.4", RuntimeSettings.defaults().withRestore(RuntimeSettings.Restore.ENABLED))
        .restore;
    assertThat(restore.restores()).isTrue();
    assertThat(restore.source).isEqualTo(RuntimeRestore.FROM_AGENT_FLAG);
    assertThat(restore.message).contains("--runtime-restore=enabled");
  }

  @Test
  void crioIsAskedForTheConfigurationItRunsWith() throws Exception {
    Path socket = host.resolve("run/crio/crio.sock");
    try (var crio = TestingCrioSocket.answering(socket, """
        [crio.runtime]
          enable_criu_support = true
        [crio.checkpoint_restore]
          container_level_enabled = "checkpoint_only"
        """)) {
      RuntimeRestore restore = probe("cri-o://1.34.14").restore;
      assertThat(restore.restores()).isFalse();
      assertThat(restore.source).isEqualTo(RuntimeRestore.FROM_RUNTIME);
      assertThat(restore.message).isEqualTo("cri-o 1.34.14 runs with container_level_enabled = \"checkpoint_only\" in"
          + " [crio.checkpoint_restore]: it restores only with \"checkpoint_restore\"");
      assertThat(restore.remedy).startsWith("set container_level_enabled = \"checkpoint_restore\" in [crio.checkpoint_restore]");
    }
    try (var crio = TestingCrioSocket.answering(socket, """
        [crio.checkpoint_restore]
          container_level_enabled = "checkpoint_restore"
        """)) {
      assertThat(probe("cri-o://1.36.6").restore.restores()).isTrue();
    }
    // Before the level: enable_criu_support turned checkpoint and restore on together.
    try (var crio = TestingCrioSocket.answering(socket, "[crio.runtime]\nenable_criu_support = true\n")) {
      assertThat(probe("cri-o://1.33.2").restore.restores()).isTrue();
    }
    assertThat(probe("cri-o://1.24.6").restore.message).contains("CRI-O does from 1.25");
  }

  @Test
  void aCrioThatDoesNotAnswerIsSaidSo() {
    RuntimeRestore restore = probe("cri-o://1.34.14").restore;
    assertThat(restore.restores()).isFalse();
    assertThat(restore.message).startsWith("the agent cannot ask cri-o 1.34.14 for its configuration at /run/crio/crio.sock");
    assertThat(restore.remedy).contains("--crio-socket");
  }

  @Test
  void withoutANodeTheSocketNamesTheRuntime() throws Exception {
    assertThat(new RuntimeProbe(host, RuntimeSettings.defaults()).probe(null).name).isEqualTo("none");
    Files.createDirectories(host.resolve("run/containerd"));
    Files.createFile(host.resolve("run/containerd/containerd.sock"));
    RuntimeInfo runtime = new RuntimeProbe(host, RuntimeSettings.defaults()).probe(null);
    assertThat(runtime.name).isEqualTo("containerd");
    assertThat(runtime.restore.restores()).isFalse();
    assertThat(runtime.restore.message).contains("reports no version");
  }

  /** Answers GET /config on a UNIX socket once per connection, as CRI-O does, with the given TOML. */
  static final class TestingCrioSocket implements AutoCloseable {
    private final ServerSocketChannel server;
    private final Path path;

    private TestingCrioSocket(ServerSocketChannel server, Path path) {
      this.server = server;
      this.path = path;
    }

    static TestingCrioSocket answering(Path path, String toml) throws IOException {
      Files.createDirectories(path.getParent());
      ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
      server.bind(UnixDomainSocketAddress.of(path));
      Thread thread = new Thread(() -> {
        while (server.isOpen()) {
          try (SocketChannel client = server.accept()) {
            client.read(ByteBuffer.allocate(4096));
            byte[] body = toml.getBytes(StandardCharsets.UTF_8);
            client.write(ByteBuffer.wrap(("HTTP/1.0 200 OK\r\nContent-Type: application/toml\r\nContent-Length: "
                + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII)));
            client.write(ByteBuffer.wrap(body));
          } catch (IOException e) {
            return; // closed
          }
        }
      }, "testing-crio");
      thread.setDaemon(true);
      thread.start();
      return new TestingCrioSocket(server, path);
    }

    @Override
    public void close() throws IOException {
      server.close();
      Files.deleteIfExists(path);
    }
  }
}
