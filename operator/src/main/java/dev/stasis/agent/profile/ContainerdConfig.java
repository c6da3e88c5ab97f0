package dev.stasis.agent.profile;

import dev.stasis.agent.AgentConfig;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.dataformat.toml.TomlMapper;
import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * containerd's configuration as containerd 2 reads it, for the table of its CRI runtime plugin
 * ({@code [plugins."io.containerd.cri.v1.runtime"]}): the file, then the files it imports (a glob in
 * the last part of a path; relative to the importing file), each file's table of a plugin replacing
 * an earlier one whole, as containerd merges them; version 1 and 2 files migrated as containerd
 * migrates them (the keys of {@code plugins."io.containerd.grpc.v1.cri"}, version 1's
 * {@code plugins.cri}, go into the runtime plugin's table). Paths are the node's, read under the
 * agent's host root.
 */
final class ContainerdConfig {
  static final String RUNTIME_PLUGIN = "io.containerd.cri.v1.runtime";
  private static final String GRPC_CRI_PLUGIN = "io.containerd.grpc.v1.cri";
  private static final TomlMapper TOML = new TomlMapper();
  private static final int MAX_FILES = 100;

  /**
   * The runtime plugin's table as containerd ends up with it.
   *
   * @param setIn the file (the node's path) whose table it is; null when no file sets it
   */
  record RuntimePlugin(Map<String, Object> table, Path setIn) {
    /** A boolean setting; {@code otherwise} when it is not set. */
    boolean flag(String key, boolean otherwise) {
      return table.get(key) instanceof Boolean b ? b : otherwise;
    }

    boolean has(String key) {
      return table.containsKey(key);
    }
  }

  private ContainerdConfig() {}

  /** Reads {@code config} (a path on the node) and its imports under {@code hostRoot}. */
  static RuntimePlugin read(Path hostRoot, Path config) throws IOException {
    Deque<Path> pending = new ArrayDeque<>(List.of(config));
    Set<Path> loaded = new HashSet<>();
    RuntimePlugin effective = new RuntimePlugin(Map.of(), null);
    while (!pending.isEmpty() && loaded.size() < MAX_FILES) {
      Path file = pending.removeFirst();
      if (!loaded.add(file)) {
        continue; // containerd skips a file imported twice
      }
      Map<String, Object> content;
      try {
        content = TOML.readValue(AgentConfig.onHost(hostRoot, file).toFile(), new TypeReference<Map<String, Object>>() {});
      } catch (IOException e) {
        throw new IOException("cannot read " + file + ": " + e.getMessage(), e);
      }
      Map<String, Object> table = runtimeTable(content);
      if (table != null) {
        effective = new RuntimePlugin(table, file);
      }
      pending.addAll(imports(hostRoot, file, content.get("imports")));
    }
    return effective;
  }

  /** This file's table of the runtime plugin, after containerd's migration of older versions; null if it has none. */
  @SuppressWarnings("unchecked")
  private static Map<String, Object> runtimeTable(Map<String, Object> content) {
    int version = content.get("version") instanceof Number n ? n.intValue() : 1;
    if (!(content.get("plugins") instanceof Map<?, ?> raw)) {
      return null;
    }
    Map<String, Object> plugins = (Map<String, Object>) raw;
    Map<String, Object> table = plugins.get(RUNTIME_PLUGIN) instanceof Map<?, ?> t ? new HashMap<>((Map<String, Object>) t) : null;
    if (version < 3) {
      Object cri = plugins.get(version < 2 ? "cri" : GRPC_CRI_PLUGIN);
      if (cri instanceof Map<?, ?> old) {
        table = table == null ? new HashMap<>() : table;
        table.putAll((Map<String, Object>) old);
      }
    }
    return table;
  }

  private static List<Path> imports(Path hostRoot, Path file, Object imports) throws IOException {
    List<Path> found = new ArrayList<>();
    if (!(imports instanceof List<?> paths)) {
      return found;
    }
    for (Object entry : paths) {
      Path named = Path.of(entry.toString()).normalize();
      Path path = named.isAbsolute() ? named : file.resolveSibling(named).normalize();
      String name = path.getFileName() == null ? "" : path.getFileName().toString();
      if (!name.contains("*")) {
        found.add(path);
        continue;
      }
      Path dir = AgentConfig.onHost(hostRoot, path.getParent());
      if (!Files.isDirectory(dir)) {
        continue;
      }
      PathMatcher matcher = FileSystems.getDefault().getPathMatcher("glob:" + name);
      try (var listing = Files.list(dir)) {
        listing.map(Path::getFileName).filter(matcher::matches).map(Path::toString).sorted()
            .forEach(n -> found.add(path.resolveSibling(n)));
      }
    }
    return found;
  }
}
