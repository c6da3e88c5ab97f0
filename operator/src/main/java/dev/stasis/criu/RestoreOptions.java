package dev.stasis.criu;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** How to restore a tree from an images directory. */
public record RestoreOptions(
    Path imagesDir,
    Path workDir,
    TreeOptions tree,
    Duration timeout) {

  public static final String LOG_FILE = "restore.log";
  public static final String PID_FILE = "restore.pid";

  /**
   * No {@code --restore-detached}: CRIU stays the restored tree's parent, reaps it when it exits
   * and exits itself, so no zombie is left behind and the agent learns when the tree ends.
   */
  public List<String> arguments() {
    List<String> args = new ArrayList<>(List.of(
        "restore",
        "--images-dir", imagesDir.toString(),
        "--work-dir", workDir.toString(),
        "--log-file", LOG_FILE,
        "--pidfile", workDir.resolve(PID_FILE).toString(),
        "-v4"));
    args.addAll(tree.restoreArguments());
    return args;
  }
}
