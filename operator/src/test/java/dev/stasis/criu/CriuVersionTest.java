package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class CriuVersionTest {
  @Test
  void parsesCriuVersionOutput() {
    assertThat(CriuVersion.parse("Version: 4.2.1\n")).isEqualTo(new CriuVersion(4, 2, 1));
    assertThat(CriuVersion.parse("Version: 3.17\nGitID: v3.17-12-gabc")).isEqualTo(new CriuVersion(3, 17, 0));
  }

  @Test
  void comparesNumericallyNotAsText() {
    assertThat(CriuVersion.parse("4.10").isAtLeast(CriuVersion.parse("4.2.1"))).isTrue();
    assertThat(CriuVersion.parse("3.17.1").isAtLeast(Criu.MINIMUM_VERSION)).isFalse();
    assertThat(CriuVersion.parse("4.2.1").isAtLeast(CriuVersion.parse("4.2.1"))).isTrue();
  }

  @Test
  void rejectsTextWithoutAVersion() {
    assertThatThrownBy(() -> CriuVersion.parse("criu: command not found"))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a CRIU version");
  }
}
