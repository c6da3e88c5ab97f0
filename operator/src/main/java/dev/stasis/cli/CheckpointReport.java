package dev.stasis.cli;

import dev.stasis.api.CheckpointStats;
import dev.stasis.archive.ContainerDump;
import dev.stasis.archive.Manifest;
import dev.stasis.criu.DumpContents;
import dev.stasis.criu.DumpStats;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * What {@code stasis inspect} found in a stored checkpoint, for people (as text, laid out as
 * checkpointctl lays it out) and for programs ({@code --format json}: this record as it is).
 *
 * @param target what was checkpointed, as the status says it (process 1234 on node-1, pod web)
 * @param archives one for a process checkpoint; one per container for a pod's
 * @param stats CRIU's statistics as the agent recorded them in the status
 * @param sourceNode the profile of the node it was taken on, as the manifest recorded it
 * @param nodes each node's verdict: whether it can restore this checkpoint, and if not why
 */
public record CheckpointReport(String namespace, String name, String uid, String phase, String target, String node,
    String storage, CheckpointStats stats, Criu criu, Map<String, Object> sourceNode, List<Archive> archives,
    List<NodeVerdict> nodes) {

  public record Criu(String version, List<String> options) {}

  /**
   * One stored archive, verified: its manifest against the sha256 the status recorded, its bytes
   * against the manifest's.
   *
   * @param container null for a process checkpoint
   * @param encryptionKey the key id it was encrypted with; null when it is not encrypted
   * @param containerDump what the runtime's archive says about its container (pod checkpoints)
   * @param files what a restore needs at the tree's paths, as the manifest recorded it
   */
  public record Archive(String container, String uri, long storedBytes, long sizeBytes, String sha256,
      String compression, String encryptionKey, Deduplicated deduplicated, ContainerDump containerDump,
      DumpContents dump, List<RequiredFile> files) {}

  /**
   * A deduplicated checkpoint's memory, stored as chunks shared with the namespace's other
   * checkpoints, put together and verified.
   *
   * @param chunks the chunks the memory images are cut into; {@code distinctChunks} of them differ
   * @param distinctStoredBytes what those distinct chunks take in storage
   * @param newBytes what this checkpoint added to storage, as its status recorded it
   * @param encryption "none", or the chunk cipher's algorithm
   */
  public record Deduplicated(long imagesBytes, int chunks, int distinctChunks, long distinctStoredBytes,
      Long newBytes, String encryption, String keyId) {}

  /**
   * A path the restored tree needs: either it travels in the archive (a job-private file on tmpfs,
   * put back before CRIU restores unless the node has it with this content), or it must exist on the
   * restoring node, compared as {@code comparedBy} says.
   *
   * @param comparedBy "sha256" or "build-id" (same content), "size" (written to by the tree: as CRIU
   *     compares it), "presence" (directories, mounts)
   */
  public record RequiredFile(String path, String kind, boolean travels, Long sizeBytes, String comparedBy) {
    static RequiredFile of(Manifest.RequiredPath p) {
      String comparedBy = p.buildId != null ? "build-id"
          : p.sha256 != null && !Boolean.TRUE.equals(p.written) ? "sha256"
          : p.size != null ? "size" : "presence";
      return new RequiredFile(p.path, p.kind, p.travelsAs != null, p.size, comparedBy);
    }
  }

  public record NodeVerdict(String node, boolean canRestore, List<String> reasons) {}

  /** The text a person reads: summary, process tree, files, sockets, memory, CRIU statistics, nodes. */
  public String text() {
    StringBuilder out = new StringBuilder();
    line(out, "Checkpoint", namespace + "/" + name + " (uid " + uid + "): " + phase);
    line(out, "Target", target);
    line(out, "Node", node);
    line(out, "Storage", storage);
    if (criu != null) {
      line(out, "CRIU", criu.version() + (criu.options() == null || criu.options().isEmpty() ? ""
          : " (" + String.join(" ", criu.options()) + ")"));
    }
    if (stats != null && stats.frozenTimeMicros != null) {
      line(out, "CRIU statistics", statistics(stats.freezingTimeMicros, stats.frozenTimeMicros,
          stats.memoryDumpTimeMicros, stats.memoryWriteTimeMicros, stats.pagesScanned, stats.pagesWritten));
    }
    if (stats != null && stats.totalTimeMillis != null) {
      line(out, "Took", millis(stats.totalTimeMillis * 1000) + " from the agent taking it to its stored manifest");
    }
    if (sourceNode != null) {
      line(out, "Source node", profile(sourceNode));
    }
    for (Archive archive : archives) {
      out.append('\n');
      archive(out, archive);
    }
    if (nodes != null) {
      out.append("\nNodes that can restore it\n");
      int width = nodes.stream().mapToInt(n -> n.node().length()).max().orElse(0);
      for (NodeVerdict n : nodes) {
        out.append(String.format(Locale.ROOT, "  %-" + width + "s  %s%n", n.node(),
            n.canRestore() ? "yes" : "no: " + String.join("; ", n.reasons())));
      }
      if (nodes.isEmpty()) {
        out.append("  (no NodeProfile: no agent runs in the cluster)\n");
      }
    }
    return out.toString();
  }

  private static void archive(StringBuilder out, Archive a) {
    out.append(a.container() == null ? "Archive" : "Container " + a.container()).append('\n');
    line(out, "  Stored", a.uri() + ", " + bytes(a.storedBytes()) + " (" + bytes(a.sizeBytes()) + " before "
        + a.compression() + " compression)" + (a.encryptionKey() == null ? "" : ", encrypted with key " + a.encryptionKey()));
    line(out, "  sha256", a.sha256() + " (verified against the Checkpoint's status)");
    Deduplicated d = a.deduplicated();
    if (d != null) {
      line(out, "  Deduplicated", bytes(d.imagesBytes()) + " of memory in " + d.chunks() + " chunks (" + d.distinctChunks()
          + " distinct, " + bytes(d.distinctStoredBytes()) + " stored, shared with the namespace's other checkpoints; "
          + ("none".equals(d.encryption()) ? "named" : "encrypted") + " with key " + d.keyId() + ", each verified)");
      line(out, "  Added", d.newBytes() == null ? "not recorded" : bytes(d.newBytes()) + " to the storage by this"
          + " checkpoint");
    }
    ContainerDump c = a.containerDump();
    if (c != null) {
      line(out, "  Container", c.name() + (c.id() == null ? "" : " (" + c.id() + ")"));
      line(out, "  Image", c.image() + (c.imageRef() == null ? "" : " (" + c.imageRef() + ")"));
      line(out, "  Runtime", c.runtime());
      line(out, "  Created", c.created());
      line(out, "  Command", String.join(" ", c.command()));
      line(out, "  Working folder", c.cwd());
      line(out, "  Root fs changes", bytes(c.rootfsDiffBytes()));
      if (!c.mounts().isEmpty()) {
        out.append("  Mounts\n");
        for (ContainerDump.Mount m : c.mounts()) {
          out.append("    ").append(m.destination()).append("  ").append(m.type()).append("  ").append(m.source()).append('\n');
        }
      }
    }
    DumpContents dump = a.dump();
    if (dump.stats() != null) {
      DumpStats s = dump.stats();
      line(out, "  CRIU statistics", statistics(s.freezingTimeMicros(), s.frozenTimeMicros(), s.memoryDumpTimeMicros(),
          s.memoryWriteTimeMicros(), s.pagesScanned(), s.pagesWritten()));
    }
    line(out, "  Memory pages", bytes(dump.pagesBytes()) + " of " + bytes(dump.imagesBytes()) + " of CRIU images");
    out.append("  Process tree\n");
    tree(out, dump.processes());
    out.append("  Open files\n");
    for (DumpContents.Process p : dump.processes()) {
      out.append("    [").append(p.pid()).append("] ").append(p.command()).append("  cwd ").append(p.cwd())
          .append("  root ").append(p.root()).append('\n');
      for (DumpContents.OpenFile f : p.files()) {
        out.append(String.format(Locale.ROOT, "      %4d %-2s %-7s %s%n", f.fd(), f.mode() == null ? "" : f.mode(),
            f.type(), f.path() == null ? "" : f.path()));
      }
    }
    List<String> sockets = new ArrayList<>();
    for (DumpContents.Process p : dump.processes()) {
      for (DumpContents.OpenFile f : p.files()) {
        if (f.socket() != null) {
          DumpContents.Socket s = f.socket();
          sockets.add(String.format(Locale.ROOT, "    [%d] %s fd %d  %s %s  %s%s  %s%n", p.pid(), p.command(), f.fd(),
              s.protocol(), s.type() == null ? "" : s.type(), s.local() == null ? "-" : s.local(),
              s.remote() == null ? "" : " -> " + s.remote(), s.state() == null ? "" : s.state()));
        }
      }
    }
    out.append("  Sockets\n");
    sockets.forEach(out::append);
    if (sockets.isEmpty()) {
      out.append("    (none)\n");
    }
    out.append("  Memory\n");
    for (DumpContents.Process p : dump.processes()) {
      out.append("    [").append(p.pid()).append("] ").append(p.command()).append("  ")
          .append(bytes(p.memory().mappedBytes())).append(" mapped, ").append(bytes(p.memory().dumpedBytes()))
          .append(" in the dump\n");
    }
    requiredFiles(out, a.files());
  }

  /** Which files travel in the archive and which the restoring node must have. */
  private static void requiredFiles(StringBuilder out, List<RequiredFile> files) {
    out.append("  Files a restore needs\n");
    for (RequiredFile f : files) {
      String size = f.sizeBytes() == null ? "" : ", " + bytes(f.sizeBytes());
      out.append(String.format(Locale.ROOT, "    %-11s %s  (%s%s, %s)%n", f.travels() ? "travels" : "must exist",
          f.path(), f.kind(), size, f.travels() ? "in the archive, put back before CRIU restores"
              : "compared by " + f.comparedBy()));
    }
    if (files.isEmpty()) {
      out.append("    (none recorded)\n");
    }
  }

  /** As pstree draws it: [PID] command  arguments. */
  private static void tree(StringBuilder out, List<DumpContents.Process> processes) {
    Map<Long, List<DumpContents.Process>> children = new HashMap<>();
    processes.forEach(p -> children.computeIfAbsent(p.ppid(), k -> new ArrayList<>()).add(p));
    var pids = processes.stream().map(DumpContents.Process::pid).collect(Collectors.toSet());
    for (DumpContents.Process root : processes) {
      if (!pids.contains(root.ppid())) {
        branch(out, root, children, "    ", "    ");
      }
    }
  }

  private static void branch(StringBuilder out, DumpContents.Process p, Map<Long, List<DumpContents.Process>> children,
      String first, String rest) {
    out.append(first).append('[').append(p.pid()).append("] ").append(p.command());
    if (!p.arguments().isEmpty()) {
      out.append("  ").append(String.join(" ", p.arguments()));
    }
    if (p.threads() > 1) {
      out.append("  (").append(p.threads()).append(" threads)");
    }
    out.append('\n');
    List<DumpContents.Process> kids = children.getOrDefault(p.pid(), List.of());
    for (int i = 0; i < kids.size(); i++) {
      boolean last = i == kids.size() - 1;
      branch(out, kids.get(i), children, rest + (last ? "└── " : "├── "), rest + (last ? "    " : "│   "));
    }
  }

  private static String statistics(Long freezing, Long frozen, Long memdump, Long memwrite, Long scanned, Long written) {
    return "frozen " + millis(frozen) + " (freezing " + millis(freezing) + "), memory dump " + millis(memdump)
        + ", memory write " + millis(memwrite) + ", pages scanned " + scanned + ", written " + written;
  }

  private static String profile(Map<String, Object> p) {
    List<String> parts = new ArrayList<>();
    parts.add(String.valueOf(p.get("arch")));
    if (p.get("cpu") instanceof Map<?, ?> cpu) {
      parts.add(String.valueOf(cpu.get("modelName")));
    }
    parts.add("kernel " + p.get("kernelRelease"));
    if (p.get("os") instanceof Map<?, ?> os) {
      parts.add(String.valueOf(os.get("prettyName")));
    }
    if (p.get("criu") instanceof Map<?, ?> criu) {
      parts.add("CRIU " + criu.get("version"));
    }
    if (p.get("runtime") instanceof Map<?, ?> runtime && runtime.get("version") != null) {
      parts.add(runtime.get("name") + " " + runtime.get("version"));
    }
    return String.join(", ", parts);
  }

  private static void line(StringBuilder out, String label, String value) {
    if (value != null) {
      out.append(String.format(Locale.ROOT, "%-18s %s%n", label + ":", value));
    }
  }

  private static String millis(Long micros) {
    return micros == null ? "?" : String.format(Locale.ROOT, "%.1f ms", micros / 1000.0);
  }

  static String bytes(long n) {
    if (n < 1024) {
      return n + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double v = n;
    int unit = -1;
    while (v >= 1024 && unit < units.length - 1) {
      v /= 1024;
      unit++;
    }
    return String.format(Locale.ROOT, "%.1f %s", v, units[unit]);
  }
}
