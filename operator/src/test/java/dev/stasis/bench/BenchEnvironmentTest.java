package dev.stasis.bench;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.testing.TestControlPlane;
import io.fabric8.kubernetes.api.model.Quantity;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The benchmark's agent gets the JVM its pod would: the image's options, the chart's memory limit. */
class BenchEnvironmentTest {
  @Test
  void theAgentsJvmHasTheImagesHeapAndCollectorWithTheChartsMemoryLimitAsItsRam() throws Exception {
    Path repo = TestControlPlane.repoRoot();
    long limit = Quantity.getAmountInBytes(new Quantity("1Gi")).longValueExact();
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
    command.addAll(BenchEnvironment.agentJvmOptions(repo));
    command.addAll(List.of("-XX:+PrintFlagsFinal", "-version"));
    Process java = new ProcessBuilder(command).redirectErrorStream(true).start();
    String flags = new String(java.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(java.waitFor(60, TimeUnit.SECONDS)).isTrue();

    assertThat(flag(flags, "MaxRAM")).isEqualTo(Long.toString(limit));
    // The image's fixed heap, not a share of this machine's memory (or of the limit).
    assertThat(flag(flags, "MaxHeapSize")).isEqualTo(Long.toString(384L << 20));
    assertThat(flag(flags, "UseG1GC")).isEqualTo("true");
  }

  private static String flag(String flags, String name) {
    return flags.lines().map(String::trim).filter(line -> line.split("\\s+").length > 3
        && line.split("\\s+")[1].equals(name)).map(line -> line.split("\\s+")[3]).findFirst().orElseThrow();
  }
}
