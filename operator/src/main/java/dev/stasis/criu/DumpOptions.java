package dev.stasis.criu;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * What to dump and how. {@link #arguments()} turns it into CRIU's command line, so that what the
 * agent ran can be recorded in the manifest and shown to people.
 *
 * @param endTree CRIU ends the tree after the dump (leaveRunning: false), itself, under its network
 *     lock, but only once the agent lets it: needs {@code holdFrozen}
 * @param holdFrozen CRIU keeps the tree frozen after the dump until the agent decides ({@link PostDumpHook})
 * @param timeout how long the dump itself may take, up to the tree frozen and every image written
 */
public record DumpOptions(
    int pid,
    Path imagesDir,
    Path workDir,
    boolean endTree,
    boolean holdFrozen,
    TreeOptions tree,
    Duration timeout) {

  public static final String LOG_FILE = "dump.log";

  public DumpOptions {
    if (endTree && !holdFrozen) {
      // Without the hook CRIU would end the tree the moment its images are written, stored or not.
      throw new IllegalArgumentException("a dump that ends its tree must hold it frozen until the agent lets it end");
    }
  }

  /** The options that change what the images hold; recorded in the manifest. */
  public List<String> recordedOptions() {
    List<String> args = new ArrayList<>();
    if (!endTree) {
      args.add("--leave-running");
    }
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
    if (holdFrozen) {
      args.add("--action-script");
      args.add(PostDumpHook.script(workDir).toString());
    }
    args.addAll(recordedOptions());
    return args;
  }
}
