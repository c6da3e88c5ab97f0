package dev.stasis.bench;

import dev.stasis.criu.Criu;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** The machine a run measured: numbers mean little without it. */
final class Machine {
  private Machine() {}

  static Map<String, String> describe(Criu criu) throws IOException {
    Map<String, String> machine = new LinkedHashMap<>();
    machine.put("nproc", Integer.toString(Runtime.getRuntime().availableProcessors()));
    machine.put("memory", meminfo("MemTotal") / 1024 + " MiB");
    machine.put("kernel", Files.readString(Path.of("/proc/sys/kernel/osrelease")).trim());
    machine.put("cpu", cpuModel());
    machine.put("criu", criu.version().map(Object::toString).orElse("not found") + " (" + criu.executable() + ")");
    machine.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
    machine.put("load average at start", loadAverage());
    return machine;
  }

  static String loadAverage() throws IOException {
    String[] fields = Files.readString(Path.of("/proc/loadavg")).split(" ");
    return fields[0] + " " + fields[1] + " " + fields[2];
  }

  private static long meminfo(String field) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
      if (line.startsWith(field + ":")) {
        return Long.parseLong(line.replaceAll("\\D", ""));
      }
    }
    return 0;
  }

  private static String cpuModel() throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
      if (line.startsWith("model name")) {
        return line.substring(line.indexOf(':') + 1).trim();
      }
    }
    return "unknown";
  }
}
