package dev.stasis.install;

import dev.stasis.testing.TestStorage;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.Checkpoint;
import dev.stasis.api.CheckpointOptions;
import dev.stasis.api.CheckpointPhase;
import dev.stasis.api.CheckpointSpec;
import dev.stasis.api.CheckpointTarget;
import dev.stasis.api.NodeProfile;
import dev.stasis.testing.InProcessStasis;
import dev.stasis.testing.Restores;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.Workloads;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent image's way to CRIU, step by step as images/build.sh and the DaemonSet take it:
 * install-criu.sh builds the self-contained prefix, install-host-criu copies it to a "host" folder,
 * and the agent checkpoints and restores a real workload through criu-host, which runs that copy
 * inside another process's namespaces with nsenter (on a node: the host's PID 1; here: this JVM).
 */
class AgentImageCriuIT {
  static final Duration TIMEOUT = Duration.ofSeconds(60);
  static final Path REPO = TestControlPlane.repoRoot();

  @TempDir Path dir;

  @Test
  void theAgentCheckpointsAndRestoresThroughCriuHost() throws Exception {
    String prefix = run(Map.of("STASIS_CRIU_PREFIX_ONLY", "1", "STASIS_CRIU_FORCE_PREFIX", "1"),
        REPO.resolve("scripts/install-criu.sh").toString()).strip();
    Path hostCriu = dir.resolve("host/var/lib/stasis/criu");
    assertThat(run(Map.of("STASIS_IMAGE_CRIU", prefix), REPO.resolve("images/install-host-criu").toString(),
        hostCriu.toString())).contains("CRIU installed in " + hostCriu);
    assertThat(run(Map.of("STASIS_IMAGE_CRIU", prefix), REPO.resolve("images/install-host-criu").toString(),
        hostCriu.toString())).as("a second start keeps the copy").contains("CRIU already in");

    // What the DaemonSet's environment gives criu-host, pointed at this JVM's namespaces.
    Path criu = dir.resolve("criu");
    Files.writeString(criu, "#!/bin/sh\nexport STASIS_HOST_CRIU='" + hostCriu + "' STASIS_HOST_NAMESPACES_PID="
        + ProcessHandle.current().pid() + "\nexec '" + REPO.resolve("images/criu-host") + "' \"$@\"\n");
    Files.setPosixFilePermissions(criu, PosixFilePermissions.fromString("rwxr-xr-x"));
    assertThat(run(Map.of(), criu.toString(), "check")).contains("Looks good");

    KubernetesClient admin = TestControlPlane.admin();
    String node = "image-" + UUID.randomUUID().toString().substring(0, 6);
    String namespace = TestControlPlane.newNamespace("image");
    TestStorage.filesystem(node, dir.resolve("archives")).create(admin);
    Path out = dir.resolve("count.txt");
    try (InProcessStasis stasis = InProcessStasis.on(admin).agent(node, dir.resolve("work"), criu).start();
        var counter = Workloads.startInPidNamespace("counter", out.toString())) {
      await().atMost(TIMEOUT).until(() -> admin.resources(NodeProfile.class).withName(node).get() != null);
      assertThat(admin.resources(NodeProfile.class).withName(node).get().getSpec().criu.version).isEqualTo("4.2.1");
      Checkpoint checkpoint = new Checkpoint();
      checkpoint.setMetadata(new ObjectMetaBuilder().withName("counter").withNamespace(namespace).build());
      checkpoint.setSpec(new CheckpointSpec(CheckpointTarget.process(node, (int) counter.pid())));
      checkpoint.getSpec().storage = node;
      // Ended by CRIU once the archive is stored: its post-dump hook, a script in the agent's work folder,
      // runs where criu-host runs CRIU (the host's namespaces) and talks to the agent through FIFOs there.
      checkpoint.getSpec().options = new CheckpointOptions();
      checkpoint.getSpec().options.leaveRunning = false;
      admin.resource(checkpoint).create();
      await().atMost(TIMEOUT).until(() -> terminal(admin, namespace));
      Checkpoint done = admin.resources(Checkpoint.class).inNamespace(namespace).withName("counter").get();
      assertThat(done.getStatus().phase).as("%s\n%s", done.getStatus().message, done.getStatus().criuLogTail)
          .isEqualTo(CheckpointPhase.Completed);
      await().atMost(TIMEOUT).until(() -> !Workloads.isAlive(counter.pid())); // CRIU ended it, after the archive was stored

      int pid = Restores.completed(admin, namespace, "counter", TIMEOUT).getStatus().restoredPid;
      try {
        long now = count(out);
        await().atMost(TIMEOUT).until(() -> count(out) > now + 2); // the restored counter counts on
      } finally {
        Workloads.kill(pid);
      }
    }
  }

  private static boolean terminal(KubernetesClient admin, String namespace) {
    Checkpoint c = admin.resources(Checkpoint.class).inNamespace(namespace).withName("counter").get();
    return c.getStatus() != null && c.getStatus().phase != null && c.getStatus().phase.isTerminal();
  }

  private static long count(Path file) {
    try {
      return Long.parseLong(Files.readString(file).trim());
    } catch (Exception e) {
      return -1;
    }
  }

  private static String run(Map<String, String> env, String... command) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(List.of(command)).redirectErrorStream(true);
    pb.environment().putAll(env);
    Process p = pb.start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(10, TimeUnit.MINUTES)).isTrue();
    assertThat(p.exitValue()).as(String.join(" ", command) + ":\n" + output).isZero();
    return output;
  }
}
