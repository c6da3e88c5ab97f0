package dev.stasis.criu;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * What to dump and how. {@link #arguments()} turns it into CRIU's command line, so that what the
 * agent ran can be recorded in the manifest and shown to people.
 */
public record DumpOptions(
    int pid,
    Path imagesDir,
    Path workDir,
    boolean leaveStopped,
    TreeOptions tree,
    Duration timeout) {

  public static final String LOG_FILE = "dump.log";

  /** The options that change what the images hold; recorded in the manifest. */
  public List<String> recordedOptions() {
    List<String> args = new ArrayList<>();
    // The tree keeps running (or stays stopped) after the dump; Stasis never lets CRIU kill it.
    args.add(leaveStopped ? "--leave-stopped" : "--leave-running");
    args.addAll(tree.dumpArguments());
    return args;
  }

  public List<String> arguments() {
    List<String> args = new ArrayList<>(List.of(
        "dump",
        "--tree", Integer.toString(pid),
        "--images-dir", imagesDir.toString(),
        "--work-dir", workDir.toString(),
        "--log-file", LOG_FILE,
        "-v4"));
    args.addAll(recordedOptions());
    return args;
  }
}
