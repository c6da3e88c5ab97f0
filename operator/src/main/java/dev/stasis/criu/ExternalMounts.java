package dev.stasis.criu;

import java.util.ArrayList;
import java.util.List;

/**
 * Mounts the process uses but does not own (bind mounts from the host, CVMFS, shared data). CRIU
 * records them by a key at dump ({@code mnt[<path>]:<key>}) and needs the key mapped back to a path
 * at restore ({@code mnt[<key>]:<path>}); Stasis derives the key from the position in the list.
 */
final class ExternalMounts {
  private ExternalMounts() {}

  static List<String> dumpArguments(List<String> paths) {
    List<String> args = new ArrayList<>();
    for (int i = 0; i < paths.size(); i++) {
      args.add("--external");
      args.add("mnt[" + paths.get(i) + "]:" + key(i));
    }
    return args;
  }

  static List<String> restoreArguments(List<String> paths) {
    List<String> args = new ArrayList<>();
    for (int i = 0; i < paths.size(); i++) {
      args.add("--external");
      args.add("mnt[" + key(i) + "]:" + paths.get(i));
    }
    return args;
  }

  private static String key(int index) {
    return "stasis-ext" + index;
  }
}
