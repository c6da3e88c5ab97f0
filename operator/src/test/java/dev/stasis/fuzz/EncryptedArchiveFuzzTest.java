package dev.stasis.fuzz;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.DecryptingInputStream;
import dev.stasis.archive.EncryptingOutputStream;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Mutated ciphertexts of an encrypted archive (a segment of 1 MiB and a short last one): every
 * mutation that changed a byte must be refused with the archive's own error, and nothing else may
 * come out of the decrypting stream.
 */
class EncryptedArchiveFuzzTest {
  private static final int CASES = 3000;

  @Test
  void mutatedCiphertextsAreRefused() throws Exception {
    Random random = new Random(11);
    byte[] keyBytes = new byte[ArchiveKey.BYTES];
    random.nextBytes(keyBytes);
    BoundKey key = BoundKey.of(new ArchiveKey("fuzz", keyBytes), ArchiveIdentity.ofProcess("fuzz", "uid"));
    byte[] plain = new byte[(1 << 20) + 4321];
    random.nextBytes(plain);
    ByteArrayOutputStream sealed = new ByteArrayOutputStream();
    try (var out = new EncryptingOutputStream(sealed, key)) {
      out.write(plain);
    }
    byte[] valid = sealed.toByteArray();
    Mutator mutator = new Mutator(12);
    int refused = 0;
    for (int i = 0; i < CASES; i++) {
      byte[] input = mutator.mutate(valid);
      try {
        byte[] decrypted = new DecryptingInputStream(new ByteArrayInputStream(input), key).readAllBytes();
        assertThat(Arrays.equals(input, valid)).as("case %d was accepted although it differs", i).isTrue();
        assertThat(decrypted).isEqualTo(plain);
      } catch (ArchiveIntegrityException expected) {
        assertThat(expected.getMessage()).as("case %d", i).isNotBlank();
        refused++;
      }
    }
    assertThat(refused).isGreaterThan(CASES * 9 / 10);
  }
}
