package dev.stasis.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class S3ConfigTest {

  @Test
  void fillsInDefaults() {
    S3Config config = new S3Config(" ", "archives", null, null, false, null, null);

    assertThat(config.endpoint()).isNull();
    assertThat(config.prefix()).isEmpty();
    assertThat(config.region()).isEqualTo("us-east-1");
  }

  @Test
  void trimsSlashesFromThePrefix() {
    assertThat(new S3Config(null, "archives", "/stasis/prod/", "eu-west-1", false, null, null).prefix())
        .isEqualTo("stasis/prod");
  }

  @Test
  void needsABucketAndBothHalvesOfStaticCredentials() {
    assertThatThrownBy(() -> new S3Config(null, "", null, null, false, null, null))
        .hasMessage("an S3 bucket name is required");
    assertThatThrownBy(() -> new S3Config(null, "archives", null, null, false, "AKIA", null))
        .hasMessageContaining("give both accessKeyId and secretAccessKey");
  }

  @Test
  void neverShowsCredentials() {
    String shown = new S3Config("http://minio:9000", "archives", null, null, true, "AKIAEXAMPLE", "the-secret").toString();

    assertThat(shown).doesNotContain("the-secret").doesNotContain("AKIAEXAMPLE").contains("credentials=static");
  }
}
