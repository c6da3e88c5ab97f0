package dev.stasis.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A command-line tool the project's scripts install in {@code .stasis/bin}, run from the repository root. */
public final class Tool {
  private final String name;
  private final List<String> fixedArgs;

  public Tool(String name, String... fixedArgs) {
    this.name = name;
    this.fixedArgs = List.of(fixedArgs);
  }

  /** Runs the tool with {@code stdin} (may be null) and returns its exit code and merged output. */
  public Result run(String stdin, String... args) throws IOException, InterruptedException {
    Process p = start(args);
    if (stdin != null) {
      p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
    }
    p.getOutputStream().close();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(120, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new IOException(name + " " + String.join(" ", args) + " did not finish");
    }
    return new Result(name, p.exitValue(), output);
  }

  /** Starts the tool, its output and errors merged; the caller reads them and ends it. */
  public Process start(String... args) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(TestControlPlane.repoRoot().resolve(".stasis/bin").resolve(name).toString());
    command.addAll(fixedArgs);
    command.addAll(List.of(args));
    return new ProcessBuilder(command).directory(TestControlPlane.repoRoot().toFile()).redirectErrorStream(true).start();
  }

  public record Result(String tool, int exitCode, String output) {
    public Result ok() {
      if (exitCode != 0) {
        throw new AssertionError(tool + " failed (" + exitCode + "):\n" + output);
      }
      return this;
    }
  }
}
