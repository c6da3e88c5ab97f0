package dev.stasis.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Writes a run's figures as the console table, BENCHMARKS.md and bench/results.json. */
final class Report {
  private final List<Figure> figures;
  private final Map<String, String> machine;
  private final String started;
  private final double minutes;

  Report(List<Figure> figures, Map<String, String> machine, String started, double minutes) {
    this.figures = figures;
    this.machine = machine;
    this.started = started;
    this.minutes = minutes;
  }

  String table() {
    StringBuilder t = new StringBuilder();
    t.append("| figure | Stasis: median (min–max) | by hand: median (min–max) | ratio | target | met |\n");
    t.append("|---|---|---|---|---|---|\n");
    for (Figure f : figures) {
      t.append("| ").append(f.name())
          .append(" | ").append(value(f.stasis()))
          .append(" | ").append(f.baseline() == null ? "—" : value(f.baseline()))
          .append(" | ").append(f.ratio() == null ? "—" : Figure.format(f.ratio()) + "×")
          .append(" | ").append(f.target() == null ? "—" : f.target().describe(f.unit()))
          .append(" | ").append(f.met() == null ? "—" : f.met() ? "yes" : "**no**")
          .append(" |\n");
    }
    return t.toString();
  }

  void writeMarkdown(Path file, String analysis) throws IOException {
    StringBuilder md = new StringBuilder();
    md.append("# Benchmarks\n\n");
    md.append("Stasis against the by-hand pipeline (`criu dump` → `tar | zstd -3 -T0` → upload; download → "
        + "`zstd -d | tar x` → `criu restore`), both measured in the same run of `bench/run.sh` (`make bench`), "
        + "which rewrites this page and `bench/results.json`. Stasis stores whole archives here: the bench's storage"
        + " says `deduplication: false` whatever the default (deduplicated checkpoints: bench/dedup-operator.sh)."
        + " Started ").append(started)
        .append(String.format(", took %.1f minutes.%n%n", minutes));
    md.append("## Targets\n\n");
    md.append("| target | figure | result | met |\n|---|---|---|---|\n");
    for (Figure f : figures) {
      if (f.target() != null) {
        String result = f.ratio() != null ? Figure.format(f.ratio()) + "× (" + value(f.stasis()) + " vs "
            + value(f.baseline()) + ")" : value(f.stasis());
        md.append("| ").append(f.target().describe(f.unit())).append(" | ").append(f.name()).append(" | ")
            .append(result).append(" | ").append(f.met() ? "yes" : "**no**").append(" |\n");
      }
    }
    md.append("\nTargets from the issues: at 1 GiB, checkpoint ≤ 0.8× the by-hand pipeline for incompressible memory"
        + " and ≤ 0.5× for compressible, restore ≤ 0.7× and ≤ 0.6×, the agent's CPU for one checkpoint and restore"
        + " ≤ 2.0 s and ≤ 1.0 s (issue 17); CRIU frozen time within 5% of bare CRIU's and the agent's heap < 256 MiB"
        + " at every size; 1,000 Checkpoints settled in < 30 s with operator heap < 256 MiB; placement of 1,000"
        + " Restores over 500 NodeProfiles < 1 s.\n\n");
    md.append("## Machine\n\n");
    machine.forEach((k, v) -> md.append("- ").append(k).append(": ").append(v).append('\n'));
    md.append("\n## Results\n\nTimes in seconds, sizes in MiB; median of the repetitions, (min–max) their spread.\n\n");
    md.append(table());
    md.append("\n## Where the time goes (medians, seconds)\n\n");
    md.append(details());
    md.append("\n").append(analysis);
    Files.writeString(file, md.toString());
  }

  /** The stages behind the figures that have them, one line each. */
  String details() {
    StringBuilder lines = new StringBuilder();
    for (Figure f : figures) {
      if (!f.details().isEmpty()) {
        StringBuilder parts = new StringBuilder();
        f.details().forEach((k, v) -> parts.append(parts.length() == 0 ? "" : ", ").append(k).append(' ')
            .append(Figure.format(v)));
        lines.append("- ").append(f.name()).append(": ").append(parts).append('\n');
      }
    }
    return lines.toString();
  }

  void writeJson(Path file) throws IOException {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("started", started);
    json.put("machine", machine);
    json.put("figures", figures.stream().map(Figure::toJson).toList());
    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), json);
  }

  private static String value(Samples s) {
    return Figure.format(s.median()) + " (" + Figure.format(s.min()) + "–" + Figure.format(s.max()) + ")";
  }
}
