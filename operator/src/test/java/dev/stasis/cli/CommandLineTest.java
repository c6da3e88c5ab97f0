package dev.stasis.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * What a user gets from the command line: help for each command without starting anything,
 * misspelled flags refused with the closest right one, values checked with the flag named, the
 * version, and shell completion that completes. (RunnableJarIT runs the same from the jar.)
 */
class CommandLineTest {
  @TempDir Path dir;

  @ParameterizedTest
  @ValueSource(strings = {"operator", "agent", "local"})
  void eachCommandPrintsItsHelpAndRunsNothing(String command) {
    Run run = run(command, "--help");
    assertThat(run.exit()).isZero();
    assertThat(run.err()).isEmpty();
    assertThat(run.out()).startsWith("Usage: stasis " + command)
        .contains("--metrics-port=PORT", "--log-format=FORMAT", "--kubeconfig=FILE", "-h, --help");
    if (!command.equals("operator")) {
      assertThat(run.out()).as("the agent's flags").contains("--max-concurrent=N", "--work-dir=DIR", "--kubelet-url=URL");
    }
  }

  @Test
  void inspectPrintsItsHelpAndChecksItsValues() {
    Run run = run("inspect", "--help");
    assertThat(run.exit()).isZero();
    assertThat(run.out()).startsWith("Usage: stasis inspect").contains("CHECKPOINT", "-n, --namespace=NS",
        "-o, --format=text|json", "--work-dir=DIR", "--kubeconfig=FILE", "Exit codes:");
    assertThat(run("inspect").err()).contains("Missing required parameter: 'CHECKPOINT'");
    assertThat(refusal("inspect", "counter", "--format", "yaml"))
        .contains("Invalid value for option '--format': 'yaml' is neither text nor json");
    assertThat(run("inspect", "counter", "--namspace", "jobs").err()).contains("Possible solutions: --namespace");
  }

  @Test
  void helpIsAlsoACommand() {
    Run run = run("help", "agent");
    assertThat(run.exit()).isZero();
    assertThat(run.out()).startsWith("Usage: stasis agent").contains("--node=NAME");
    assertThat(run("--help").out()).contains("operator", "agent", "local", "inspect", "completion");
  }

  @Test
  void noCommandSaysWhatThereIs() {
    Run run = run();
    assertThat(run.exit()).isEqualTo(2);
    assertThat(run.err()).contains("say which command to run", "Commands:", "operator", "agent", "local");
  }

  @Test
  void aMisspelledFlagIsRefusedNamingTheRightOne() {
    Run run = run("local", "--metrics-prot", "18080");
    assertThat(run.exit()).isEqualTo(2);
    assertThat(run.err()).contains("Unknown option", "'--metrics-prot'", "Possible solutions: --metrics-port");
    assertThat(run("agent", "--max-concurent=3").err()).contains("Possible solutions: --max-concurrent");
    assertThat(run("bogus").err()).contains("Unmatched argument", "'bogus'");
  }

  @Test
  void valuesAreCheckedWithTheFlagNamed() {
    assertThat(refusal("operator", "--metrics-port", "70000"))
        .contains("Invalid value for option '--metrics-port': '70000' is not a port");
    assertThat(refusal("operator", "--metrics-port", "eighty"))
        .contains("Invalid value for option '--metrics-port': 'eighty' is not a port");
    assertThat(refusal("agent", "--node=n", "--retry-backoff", "10"))
        .contains("Invalid value for option '--retry-backoff': '10' is not a duration");
    assertThat(refusal("agent", "--node=n", "--retry-backoff", "0s"))
        .contains("Invalid value for option '--retry-backoff': '0s' is no time at all");
    assertThat(refusal("agent", "--node=n", "--max-concurrent", "0"))
        .contains("Invalid value for option '--max-concurrent': '0' is not a whole number of at least 1");
    assertThat(refusal("operator", "--kubeconfig", dir.resolve("missing").toString()))
        .contains("Invalid value for option '--kubeconfig': '" + dir.resolve("missing") + "' is missing");
    assertThat(refusal("agent", "--node=n", "--host-root", dir.resolve("nowhere").toString()))
        .contains("Invalid value for option '--host-root'");
    assertThat(refusal("agent", "--node=n", "--kubelet-url", "node-1:10250"))
        .contains("Invalid value for option '--kubelet-url': 'node-1:10250' is not a URL");
    assertThat(refusal("agent", "--node=n", "--node-labels", "zone"))
        .contains("--node-labels", "KEY=VALUE");
    assertThat(refusal("agent", "--node=n", "--travelling-files-max-count", "-1"))
        .contains("Invalid value for option '--travelling-files-max-count': '-1' is not a whole number of at least 0");
    assertThat(refusal("agent", "--node=n", "--travelling-files-max-bytes", "1Gi"))
        .contains("Invalid value for option '--travelling-files-max-bytes': '1Gi' is not a number of bytes");
    assertThat(refusal("agent", "--node=n", "--runtime-restore", "sometimes"))
        .contains("Invalid value for option '--runtime-restore': 'sometimes' is none of auto, enabled, disabled");
    assertThat(refusal("operator", "--log-format", "xml"))
        .contains("Invalid value for option '--log-format'", "json, text");
  }

  @Test
  void theAgentNeedsItsNode() {
    assertThat(refusal("agent")).contains("--node NAME or the NODE_NAME environment variable");
  }

  @Test
  void versionSaysWhichStasis() throws Exception {
    Run run = run("--version");
    assertThat(run.exit()).isZero();
    String version = Files.readString(Path.of("target/classes/dev/stasis/cli/version.properties"))
        .replace("version=", "").trim();
    assertThat(version).as("filled in by the build").doesNotContain("${");
    assertThat(run.out()).startsWith("stasis " + version + "\n").contains("Java 17");
    assertThat(run("agent", "--version").out()).startsWith("stasis " + version);
  }

  /** The generated bash completion, sourced into a real bash, completes commands and flags. */
  @Test
  void completionCompletesCommandsAndFlags() throws Exception {
    Run run = run("completion");
    assertThat(run.exit()).isZero();
    Path script = Files.writeString(dir.resolve("stasis-completion.bash"), run.out());
    assertThat(complete(script, "stasis", "ag")).containsExactly("agent");
    assertThat(complete(script, "stasis", "agent", "--max-con")).containsExactly("--max-concurrent");
    assertThat(complete(script, "stasis", "local", "--log-format", "")).containsExactlyInAnyOrder("json", "text");
  }

  private static List<String> complete(Path script, String... words) throws Exception {
    String program = "source " + script + "\nCOMP_WORDS=(" + String.join(" ", quoted(words)) + ")\n"
        + "COMP_CWORD=" + (words.length - 1) + "\nCOMP_LINE=\"${COMP_WORDS[*]}\"\nCOMP_POINT=${#COMP_LINE}\n"
        + "_complete_stasis\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n";
    // compopt complains outside a real completion; what matters is COMPREPLY.
    Process bash = new ProcessBuilder("bash", "-c", program).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    String out = new String(bash.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(bash.waitFor(30, TimeUnit.SECONDS)).isTrue();
    return out.lines().map(String::trim).filter(l -> !l.isEmpty()).toList();
  }

  private static List<String> quoted(String... words) {
    return java.util.Arrays.stream(words).map(w -> "'" + w + "'").toList();
  }

  private static String refusal(String... args) {
    Run run = run(args);
    assertThat(run.exit()).as("exit code of %s; out: %s", List.of(args), run.out()).isEqualTo(2);
    return run.err();
  }

  record Run(int exit, String out, String err) {}

  static Run run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    var cli = Main.commandLine();
    cli.setOut(new PrintWriter(out));
    cli.setErr(new PrintWriter(err));
    int exit = cli.execute(args);
    return new Run(exit, out.toString(), err.toString());
  }
}
