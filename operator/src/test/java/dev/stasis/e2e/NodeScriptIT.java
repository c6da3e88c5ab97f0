package dev.stasis.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.testing.TestControlPlane;
import dev.stasis.testing.TestNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * scripts/node.sh while the test run's node runs: the node is the machine's, so a second start
 * is refused at once, naming the folder of the node that runs, and leaves that node alone.
 * (That `stop` leaves nothing behind is checked by `stop` itself, which fails the run otherwise.)
 */
@ExtendWith(TestNode.Extension.class)
class NodeScriptIT {
  @TempDir static Path dir;
  static TestNode node;

  @BeforeAll
  static void start(TestNode testNode) {
    node = testNode;
  }

  @Test
  void aSecondNodeIsRefusedWhileOneRuns() throws Exception {
    Result second = nodeSh("start", dir.resolve("second").toString());
    assertThat(second.exitCode()).isEqualTo(1);
    assertThat(second.output()).contains("a node already runs on this machine, started in " + node.dir()
        + ": stop it (scripts/node.sh stop " + node.dir() + ") or pass --wait SECONDS");
    assertThat(nodeSh("status", node.dir().toString()).exitCode()).as("the running node is untouched").isZero();
    assertThat(node.admin().nodes().withName(node.name()).get().getStatus().getConditions())
        .anyMatch(c -> c.getType().equals("Ready") && c.getStatus().equals("True"));
  }

  @Test
  void statusOfAFolderWithoutANode() throws Exception {
    assertThat(nodeSh("status", dir.toString()).exitCode()).isNotZero();
  }

  record Result(int exitCode, String output) {}

  static Result nodeSh(String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(TestControlPlane.repoRoot().resolve("scripts/node.sh").toString()));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(5, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new AssertionError("scripts/node.sh " + String.join(" ", args) + " did not finish:\n" + output);
    }
    return new Result(p.exitValue(), output);
  }
}
