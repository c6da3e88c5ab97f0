package dev.stasis.agent.process;

import dev.stasis.archive.Manifest.RequiredPath;
import dev.stasis.criu.RegularFiles;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a process tree depends on outside its own memory, read from /proc just before CRIU dumps
 * it: its executables, mapped files, working and root directories, the mounts of the node, the
 * established TCP connections it holds and the GPU devices it uses. {@link #requiredPaths} adds
 * the files CRIU recorded and the mounts all of them live on. The manifest carries the result, so
 * placement and the pre-flight can judge a node before a byte of the archive is downloaded.
 *
 * @param paths executables, mapped files, cwd and root, by path
 * @param openFiles the paths the tree's file descriptors name
 * @param mounts every mount of the tree's mount namespace, as mountinfo lists them
 * @param root the tree's root directory as this agent reaches it (/proc/PID/root)
 */
public record ProcessInventory(
    Map<String, RequiredPath> paths, Set<String> openFiles, List<RequiredPath> mounts, Path root,
    List<String> tcpConnections, List<String> gpuDevices) {
  private static final Logger log = LoggerFactory.getLogger(ProcessInventory.class);
  /** Device nodes of NVIDIA (nvidia0, nvidiactl, nvidia-uvm) and AMD (kfd, dri render/card) GPUs. */
  private static final Pattern GPU_DEVICE = Pattern.compile("/dev/(nvidia.*|kfd|dri/(renderD|card)\\d+)");
  private static final String TCP_ESTABLISHED = "01";
  private static final String TMPFS = "tmpfs";

  public static ProcessInventory of(List<Long> pids) {
    return of(Path.of("/proc"), pids);
  }

  static ProcessInventory of(Path proc, List<Long> pids) {
    Map<String, RequiredPath> paths = new LinkedHashMap<>();
    Set<String> gpus = new LinkedHashSet<>();
    Set<String> socketInodes = new HashSet<>();
    Set<String> openFiles = new LinkedHashSet<>();
    for (long pid : pids) {
      Path dir = proc.resolve(Long.toString(pid));
      link(dir.resolve("exe")).ifPresent(exe -> add(paths, exe, RequiredPath.EXECUTABLE, dir.resolve("exe")));
      link(dir.resolve("cwd")).ifPresent(cwd -> add(paths, cwd, RequiredPath.CWD, dir.resolve("cwd")));
      link(dir.resolve("root")).ifPresent(r -> add(paths, r, RequiredPath.ROOT, dir.resolve("root")));
      for (var mapped : mappedFiles(dir).entrySet()) {
        if (GPU_DEVICE.matcher(mapped.getKey()).matches()) {
          gpus.add(mapped.getKey());
        } else {
          addMapped(paths, mapped.getKey(), dir.resolve("map_files").resolve(mapped.getValue().range()),
              mapped.getValue().sharedWritable());
        }
      }
      for (String target : fdTargets(dir)) {
        if (target.startsWith("socket:[")) {
          socketInodes.add(target.substring("socket:[".length(), target.length() - 1));
        } else if (GPU_DEVICE.matcher(target).matches()) {
          gpus.add(target);
        } else if (target.startsWith("/")) {
          openFiles.add(target);
        }
      }
    }
    Path first = proc.resolve(pids.isEmpty() ? "self" : Long.toString(pids.get(0)));
    return new ProcessInventory(paths, openFiles, mountTable(first.resolve("mountinfo")), first.resolve("root"),
        tcpConnections(proc, pids, socketInodes), new ArrayList<>(gpus));
  }

  /**
   * The paths a restore needs. Open and mapped files are taken from what CRIU recorded at the
   * instant it froze the tree ({@code files.img}): a file /proc showed open a moment earlier may
   * have been closed by then (and CRIU never checks it), another opened. A file the tree could
   * write to (open for writing, mapped shared and writable) is recorded as CRIU saw it, with the
   * size CRIU will insist on and no content: what it holds is the tree's own doing, and a job
   * stopped at the checkpoint leaves it exactly so. Files the tree only reads keep their content
   * identity (build-id, sha256). Files gone from disk are left out: CRIU carries deleted files in
   * its images. Then the mount point of every path, except the root filesystem every node has.
   */
  public List<RequiredPath> requiredPaths(List<RegularFiles.RegularFile> recordedByCriu) {
    return requiredPaths(recordedByCriu, List.of());
  }

  /** As {@link #requiredPaths(List)}, with the files that travel in the archive marked so ({@link TravellingFiles}). */
  public List<RequiredPath> requiredPaths(List<RegularFiles.RegularFile> recordedByCriu,
      List<TravellingFiles.Captured> travelling) {
    Map<String, RequiredPath> required = new LinkedHashMap<>(paths);
    Map<String, TravellingFiles.Captured> travels = new LinkedHashMap<>();
    travelling.forEach(captured -> travels.put(captured.path(), captured));
    for (RegularFiles.RegularFile file : recordedByCriu) {
      if (travels.containsKey(file.path())) {
        String kind = required.containsKey(file.path()) ? required.get(file.path()).kind : RequiredPath.FILE;
        required.put(file.path(), travels.get(file.path()).asRequiredPath(kind, file.writable()));
        continue;
      }
      RequiredPath known = required.get(file.path());
      if (known != null) { // an executable or mapped file, read before the freeze
        boolean changedSince = file.size() != null && !file.size().equals(known.size);
        if (file.writable() || changedSince) {
          required.put(file.path(), FileIdentity.written(file.path(), known.kind, file.size()));
        }
        continue;
      }
      Path onSource = onSource(file.path());
      if (file.isDirectory().orElseGet(() -> Files.isDirectory(onSource))) {
        required.put(file.path(), new RequiredPath(file.path(), RequiredPath.DIRECTORY));
      } else if (file.isRegularFile().orElse(true) && Files.isRegularFile(onSource)) {
        if (file.writable()) {
          required.put(file.path(), FileIdentity.written(file.path(), RequiredPath.FILE, file.size()));
          continue;
        }
        try {
          RequiredPath recorded = FileIdentity.record(file.path(), RequiredPath.FILE, onSource, file.size() == null);
          recorded.size = file.size(); // what CRIU saw while the tree was frozen
          required.put(file.path(), recorded);
        } catch (IOException e) {
          log.debug("cannot record {}: {}", file.path(), e.getMessage());
        }
      }
    }
    List<RequiredPath> result = new ArrayList<>(required.values());
    result.addAll(mountsUsed(required.values()));
    result.sort(Comparator.comparing((RequiredPath p) -> p.path).thenComparing(p -> p.kind));
    return result;
  }

  /**
   * Records one path unless it is already recorded (an executable is also mapped), lives in a
   * kernel filesystem, or is gone from disk (CRIU carries deleted files in its images).
   */
  private static void add(Map<String, RequiredPath> paths, String path, String kind, Path file) {
    add(paths, path, kind, file, false);
  }

  /** {@code written}: mapped shared and writable, so its content is not compared (see {@link #requiredPaths}). */
  private static void add(Map<String, RequiredPath> paths, String path, String kind, Path file, boolean written) {
    if (paths.containsKey(path) || path.endsWith(" (deleted)") || path.startsWith("/proc/") || path.startsWith("/sys/")) {
      return;
    }
    try {
      paths.put(path, written ? FileIdentity.written(path, kind, Files.size(file)) : FileIdentity.record(path, kind, file, false));
    } catch (IOException e) {
      log.debug("cannot record {} {}: {}", kind, path, e.getMessage());
    }
  }

  private static List<String> fdTargets(Path dir) {
    List<String> targets = new ArrayList<>();
    try (var fds = Files.list(dir.resolve("fd"))) {
      fds.forEach(fd -> link(fd).ifPresent(targets::add));
    } catch (IOException e) {
      // the process ended; CRIU will say so
    }
    return targets;
  }

  /** A mapped file: the address range of its first mapping, and whether any mapping of it is shared and writable. */
  private record Mapping(String range, boolean sharedWritable) {}

  /**
   * File-backed mappings: the last column of /proc/PID/maps when it is an absolute path, with the
   * address range of its first mapping (its entry in /proc/PID/map_files).
   */
  private static Map<String, Mapping> mappedFiles(Path dir) {
    Map<String, Mapping> files = new LinkedHashMap<>();
    for (String line : lines(dir.resolve("maps"))) {
      // ADDRESS PERMS OFFSET DEV INODE PATH, PERMS such as "rw-s" (shared) or "r-xp" (private)
      String[] fields = line.trim().split("\\s+", 6);
      if (fields.length == 6 && fields[5].startsWith("/")) {
        boolean sharedWritable = fields[1].length() == 4 && fields[1].charAt(1) == 'w' && fields[1].charAt(3) == 's';
        files.merge(fields[5], new Mapping(fields[0], sharedWritable),
            (first, next) -> new Mapping(first.range(), first.sharedWritable() || next.sharedWritable()));
      }
    }
    return files;
  }

  /**
   * A mapped file is read through /proc/PID/map_files, which opens the very file that is mapped:
   * its path may name something else by now (another file, a FIFO that would block the agent
   * forever). Mapped devices (/dev/zero) are not files a restore needs, and reading one may never end.
   */
  private static void addMapped(Map<String, RequiredPath> paths, String path, Path mapFile, boolean sharedWritable) {
    try {
      if (Files.readAttributes(mapFile, BasicFileAttributes.class).isRegularFile()) {
        add(paths, path, RequiredPath.MAPPED, mapFile, sharedWritable);
      }
    } catch (IOException e) {
      log.debug("cannot look at mapped {}: {}", path, e.getMessage());
    }
  }

  private static List<RequiredPath> mountTable(Path mountinfo) {
    List<RequiredPath> mounts = new ArrayList<>();
    for (String line : lines(mountinfo)) {
      // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
      String[] fields = line.split(" ");
      int dash = List.of(fields).indexOf("-");
      if (fields.length < 5 || dash < 0 || dash + 2 >= fields.length) {
        continue;
      }
      RequiredPath mount = new RequiredPath(unescape(fields[4]), RequiredPath.MOUNT);
      mount.fsType = fields[dash + 1];
      mount.source = unescape(fields[dash + 2]);
      mounts.add(mount);
    }
    return mounts;
  }

  /** The mount point of every path, except the root filesystem every node has. */
  private Collection<RequiredPath> mountsUsed(Collection<RequiredPath> required) {
    Map<String, RequiredPath> used = new LinkedHashMap<>();
    for (RequiredPath path : required) {
      mountOf(path.path).filter(mount -> !mount.path.equals("/")).ifPresent(mount -> used.put(mount.path, mount));
    }
    return used.values();
  }

  /** The mount {@code path} lives on, in the tree's mount table. */
  Optional<RequiredPath> mountOf(String path) {
    RequiredPath best = null;
    for (RequiredPath mount : mounts) {
      boolean contains = mount.path.equals("/") || path.equals(mount.path) || path.startsWith(mount.path + "/");
      // Later lines are mounted over earlier ones at the same point, so ">=" keeps the one in effect.
      if (contains && (best == null || mount.path.length() >= best.path.length())) {
        best = mount;
      }
    }
    return Optional.ofNullable(best);
  }

  /** Whether {@code path} is on a tmpfs: in memory, on this node only. */
  boolean isOnTmpfs(String path) {
    return mountOf(path).filter(mount -> TMPFS.equals(mount.fsType)).isPresent();
  }

  /** Whether, a moment before the dump, the tree had a file on a tmpfs open or mapped. */
  public boolean holdsTmpfsFiles() {
    return paths.values().stream().filter(p -> p.kind.equals(RequiredPath.MAPPED) || p.kind.equals(RequiredPath.EXECUTABLE))
        .anyMatch(p -> isOnTmpfs(p.path)) || openFiles.stream().anyMatch(this::isOnTmpfs);
  }

  /** mountinfo escapes space, tab, newline and backslash as octal (\040). */
  private static String unescape(String field) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < field.length(); i++) {
      char c = field.charAt(i);
      if (c == '\\' && i + 3 < field.length() && field.substring(i + 1, i + 4).matches("[0-7]{3}")) {
        out.append((char) Integer.parseInt(field.substring(i + 1, i + 4), 8));
        i += 3;
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }

  /** Established connections whose socket the tree holds, from each process's /proc/PID/net/tcp{,6}. */
  private static List<String> tcpConnections(Path proc, List<Long> pids, Set<String> socketInodes) {
    Set<String> connections = new LinkedHashSet<>();
    if (socketInodes.isEmpty()) {
      return new ArrayList<>();
    }
    Set<String> netNamespaces = new HashSet<>();
    for (long pid : pids) {
      Path dir = proc.resolve(Long.toString(pid));
      if (!netNamespaces.add(link(dir.resolve("ns/net")).orElse(Long.toString(pid)))) {
        continue; // same network namespace as a process already read
      }
      for (String table : List.of("net/tcp", "net/tcp6")) {
        for (String line : lines(dir.resolve(table))) {
          String[] f = line.trim().split("\\s+");
          // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
          if (f.length > 9 && f[3].equals(TCP_ESTABLISHED) && socketInodes.contains(f[9])) {
            connections.add(address(f[1]) + " -> " + address(f[2]));
          }
        }
      }
    }
    return new ArrayList<>(connections);
  }

  /** "0100007F:1F90" (the address in host byte order per 32-bit word, hex) as "127.0.0.1:8080". */
  static String address(String hex) {
    int colon = hex.indexOf(':');
    String ip = hex.substring(0, colon);
    int port = Integer.parseInt(hex.substring(colon + 1), 16);
    byte[] bytes = new byte[ip.length() / 2];
    for (int word = 0; word < bytes.length / 4; word++) {
      for (int b = 0; b < 4; b++) {
        int at = word * 8 + (3 - b) * 2; // little-endian words: the last byte pair comes first
        bytes[word * 4 + b] = (byte) Integer.parseInt(ip.substring(at, at + 2), 16);
      }
    }
    try {
      String host = InetAddress.getByAddress(bytes).getHostAddress();
      return (bytes.length == 16 ? "[" + host + "]" : host) + ":" + port;
    } catch (UnknownHostException e) {
      return hex; // not 4 or 16 bytes: show what the kernel wrote
    }
  }

  /** {@code path} as the tree sees it, reached from this agent: under the tree's root. */
  Path onSource(String path) {
    return root.resolve(path.substring(1));
  }

  private static Optional<String> link(Path link) {
    try {
      return Optional.of(Files.readSymbolicLink(link).toString());
    } catch (IOException | UnsupportedOperationException e) {
      return Optional.empty();
    }
  }

  private static List<String> lines(Path file) {
    try {
      return Files.readAllLines(file);
    } catch (IOException e) {
      return List.of();
    }
  }
}
