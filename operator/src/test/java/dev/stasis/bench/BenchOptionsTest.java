package dev.stasis.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BenchOptionsTest {
  static final Map<String, String> DEFAULTS = Map.of("--repetitions", "7", "--sizes", "0,256");

  @Test
  void givenOptionsOverTheirDefaults() {
    BenchOptions defaults = BenchOptions.parse(new String[0], DEFAULTS);
    assertThat(defaults.integer("--repetitions")).isEqualTo(7);
    assertThat(defaults.sizes("--sizes")).containsExactly(0, 256);
    assertThat(defaults.write()).isTrue();

    BenchOptions given = BenchOptions.parse(new String[] {"--sizes", "none", "--no-write", "--repetitions", "2"}, DEFAULTS);
    assertThat(given.integer("--repetitions")).isEqualTo(2);
    assertThat(given.sizes("--sizes")).isEqualTo(List.of());
    assertThat(given.write()).isFalse();
  }

  /** A mistyped option must not run the defaults for an hour. */
  @Test
  void anUnknownOrIncompleteOptionIsRefused() {
    assertThatThrownBy(() -> BenchOptions.parse(new String[] {"--repetition", "2"}, DEFAULTS))
        .hasMessageContaining("unknown option --repetition (known: ");
    assertThatThrownBy(() -> BenchOptions.parse(new String[] {"--repetitions"}, DEFAULTS))
        .hasMessageContaining("unknown option --repetitions");
  }
}
