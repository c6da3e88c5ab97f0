package dev.stasis.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** What readers of an archive see when the stored object is not the one recorded. */
class ExpectedBytesInputStreamTest {
  static final byte[] STORED = "the archive as it was stored".getBytes();
  static final String SHA256 = Sha256.hexOf(STORED);

  @Test
  void theRecordedBytesPass() throws IOException {
    assertThat(read(STORED)).isEqualTo(STORED);
  }

  @Test
  void otherBytesOfTheSameSizeFailAtTheirEnd() {
    byte[] replaced = STORED.clone();
    replaced[3] ^= 1;
    assertThatThrownBy(() -> read(replaced)).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("was recorded when it was stored: it was damaged or replaced");
  }

  @Test
  void aShorterObjectFails() {
    assertThatThrownBy(() -> read(Arrays.copyOf(STORED, 10))).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("is 10 bytes, " + STORED.length + " were recorded");
  }

  /** An endless object is read one byte past the recorded size, no further. */
  @Test
  void aLongerObjectFailsOneBytePastTheRecordedSize() {
    long[] served = {0};
    InputStream endless = new InputStream() {
      @Override
      public int read() {
        served[0]++;
        return 'x';
      }
    };
    assertThatThrownBy(() -> new ExpectedBytesInputStream(endless, SHA256, STORED.length).readAllBytes())
        .isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("longer than the " + STORED.length + " bytes recorded");
    assertThat(served[0]).isEqualTo(STORED.length + 1);
  }

  private static byte[] read(byte[] object) throws IOException {
    return new ExpectedBytesInputStream(new ByteArrayInputStream(object), SHA256, STORED.length).readAllBytes();
  }
}
