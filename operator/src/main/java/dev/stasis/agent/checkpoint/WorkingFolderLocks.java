package dev.stasis.agent.checkpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * One CRIU dump at a time per working folder. When a process's /proc is not its own (a process
 * in its own PID namespace on the host's mounts), CRIU's parasite code mounts a proc at
 * {@code proc.crtools} in the process's working folder; a second dump of a process with the same
 * working folder at that moment fails with "Can't create a directory (-17)". Found with two slots
 * dumping counters started from one folder. Folders are told apart by their inode, so processes
 * in other mount namespaces are compared by what they really share. A lock is held until the
 * parasite has left the tree: until CRIU has exited, or, when it holds the tree frozen, until the
 * tree is dumped (CRIU cures its parasites before its post-dump action).
 */
final class WorkingFolderLocks {
  private final KeyedLocks<String> locks = new KeyedLocks<>();

  /** Holds the locks of the working folders of these processes until closed; always taken in one order. */
  KeyedLocks.Held lock(List<Long> tree) {
    TreeSet<String> folders = new TreeSet<>();
    for (long pid : tree) {
      try {
        Object key = Files.readAttributes(Path.of("/proc", Long.toString(pid), "cwd"), BasicFileAttributes.class)
            .fileKey();
        if (key != null) {
          folders.add(key.toString());
        }
      } catch (IOException e) {
        // gone, or not ours to see: CRIU will say so
      }
    }
    List<KeyedLocks.Held> held = new ArrayList<>();
    for (String folder : folders) {
      held.add(locks.lock(folder));
    }
    return () -> held.forEach(KeyedLocks.Held::close);
  }

  /** Folders someone holds or waits for now. */
  int inUse() {
    return locks.inUse();
  }
}
