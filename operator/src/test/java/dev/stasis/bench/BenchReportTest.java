package dev.stasis.bench;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What `make bench` writes: the figures the issue asks for, in results.json and BENCHMARKS.md. */
class BenchReportTest {
  @TempDir Path temp;

  @Test
  void resultsJsonHoldsEachFigureWithMedianSpreadRatioAndTarget() throws Exception {
    Report report = new Report(List.of(checkpointFigure(), heapFigure()), machine(), "2026-01-01T00:00:00Z", 12.5);
    Path json = temp.resolve("results.json");

    report.writeJson(json);

    JsonNode figures = new ObjectMapper().readTree(json.toFile()).get("figures");
    JsonNode checkpoint = figures.get(0);
    assertThat(checkpoint.get("name").asText()).isEqualTo("checkpoint-1024MiB-incompressible");
    assertThat(checkpoint.get("stasis_s").asDouble()).isEqualTo(3.0);
    assertThat(checkpoint.get("baseline_s").asDouble()).isEqualTo(6.0);
    assertThat(checkpoint.get("ratio").asDouble()).isEqualTo(0.5);
    assertThat(checkpoint.get("target").asText()).isEqualTo("≤ 0.60× by hand");
    assertThat(checkpoint.get("met").asBoolean()).isTrue();
    assertThat(checkpoint.get("repetitions").asInt()).isEqualTo(3);
    assertThat(checkpoint.get("stasis_spread").get("min").asDouble()).isEqualTo(2.0);
    assertThat(checkpoint.get("stasis_spread").get("max").asDouble()).isEqualTo(10.0);
    assertThat(checkpoint.get("details").get("by hand: upload").asDouble()).isEqualTo(4.0);
    JsonNode heap = figures.get(1);
    assertThat(heap.get("stasis_mib").asDouble()).isEqualTo(300.0);
    assertThat(heap.get("baseline_mib").isNull()).isTrue();
    assertThat(heap.get("met").asBoolean()).isFalse();
  }

  @Test
  void benchmarksMdStartsWithTheTargetsAndNamesTheMachine() throws Exception {
    Report report = new Report(List.of(checkpointFigure(), heapFigure()), machine(), "2026-01-01T00:00:00Z", 12.5);
    Path md = temp.resolve("BENCHMARKS.md");

    report.writeMarkdown(md, "## Analysis\n\nwhy\n");

    String text = Files.readString(md);
    assertThat(text.indexOf("## Targets")).isLessThan(text.indexOf("## Machine"));
    assertThat(text).contains("| ≤ 0.60× by hand | checkpoint-1024MiB-incompressible | 0.50× (3.00 (2.00–10.0) vs 6.00 (5.00–7.00)) | yes |")
        .contains("| < 256 MiB | operator-heap | 300 (300–300) | **no** |")
        .contains("- nproc: 2", "- criu: 4.2.1", "## Analysis");
  }

  /** bench/dedup-operator.sh: issue 18's figures against their targets, a missed one marked so. */
  @Test
  void issue18sTargetTableMarksWhatIsMissed() {
    List<DedupOperatorBenchmark.Taken> taken = new ArrayList<>();
    long gib = 1L << 30;
    taken.add(new DedupOperatorBenchmark.Taken("whole", 10, 9, 0.50, gib, gib));
    taken.add(new DedupOperatorBenchmark.Taken("dedup-1", 30, 29, 0.50, gib, gib));
    taken.add(new DedupOperatorBenchmark.Taken("dedup-2", 5, 4, 0.51, gib, gib / 20));
    taken.add(new DedupOperatorBenchmark.Taken("dedup-mapped", 5, 4, 0.50, gib, gib / 10));
    taken.add(new DedupOperatorBenchmark.Taken("dedup-scattered", 9, 8, 0.50, gib, gib * 3 / 4));

    String table = DedupOperatorBenchmark.targets(1024, 2, taken, samples(4, 4), samples(10, 10), "2026-12-06T06:00:00Z");

    assertThat(table).contains("| second checkpoint, 5% of memory rewritten in 1 MiB blocks: bytes uploaded | 5.0% | ≤ 8% | yes |")
        .contains("| second checkpoint, 5% rewritten: time against the whole archive's | 0.50× (5.0 s vs 10.0 s;"
            + " 0.17× the first deduplicated one's 30.0 s) | ≤ 0.35× | **missed** |")
        .contains("| 10.0% | ≤ 12% | yes |")
        .contains("| 1075 MiB (1.05× the memory) | ≤ 1638 MiB (1.6 GiB per GiB) | yes |")
        .contains("| 75.0% with 128 KiB chunks (bench/analysis.md: why) | measured and reported | reported |")
        .contains("| restore of checkpoint 2 of the series against the whole archive's | 2.50× (10.00 (10.00–10.00) s vs 4.00 (4.00–4.00) s)"
            + " | ≤ 1.05× | **missed** |")
        .contains("| 1.01× (0.505 s vs 0.500 s) |");
  }

  /** Its section is replaced in place on a rerun, put before the jobs' section the first time, and nothing else moves. */
  @Test
  void aGeneratedSectionReplacesOnlyItself() {
    GeneratedSection section = new GeneratedSection("bench/x.sh");
    String page = "# Benchmarks\n\nintro\n\n## Jobs\n\njobs\n";

    String first = section.put(page, "## X\n\nfirst\n", "## Jobs");
    String second = section.put(first, "## X\n\nsecond\n", "## Jobs");

    assertThat(first).startsWith("# Benchmarks\n\nintro\n\n" + section.begin() + "## X\n\nfirst\n" + section.end())
        .endsWith("\n## Jobs\n\njobs\n");
    assertThat(second).isEqualTo(first.replace("first", "second"));
    assertThat(section.in(second)).contains(section.begin() + "## X\n\nsecond\n" + section.end());
    assertThat(section.in(page)).isEmpty();
    assertThat(section.put("# other page\n", "## X\n", "## Jobs")).isEqualTo("# other page\n\n" + section.begin()
        + "## X\n" + section.end());
  }

  private static Figure checkpointFigure() {
    return new Figure("checkpoint-1024MiB-incompressible", "s", samples(2, 3, 10), samples(5, 6, 7), Target.ratio(0.6),
        Map.of("by hand: upload", 4.0));
  }

  private static Figure heapFigure() {
    return new Figure("operator-heap", "MiB", samples(300), null, Target.atMost(256), Map.of());
  }

  private static Samples samples(double... values) {
    Samples samples = new Samples();
    for (double v : values) {
      samples.add(v);
    }
    return samples;
  }

  private static Map<String, String> machine() {
    Map<String, String> machine = new LinkedHashMap<>();
    machine.put("nproc", "2");
    machine.put("criu", "4.2.1");
    return machine;
  }
}
