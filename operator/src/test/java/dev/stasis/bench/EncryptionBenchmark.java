package dev.stasis.bench;

import dev.stasis.archive.ArchiveIdentity;
import dev.stasis.archive.ArchiveKey;
import dev.stasis.archive.BoundKey;
import dev.stasis.archive.DecryptingInputStream;
import dev.stasis.archive.EncryptingOutputStream;
import dev.stasis.archive.Sha256;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Random;

/**
 * {@code bench/encryption.sh}: what archive encryption costs per byte, next to the sha256 every
 * archive byte already goes through. 256 MiB of random bytes (zstd's output looks like that),
 * written in the 1 MiB pieces the archive writer uses; best of 5 runs, in MiB/s of plaintext.
 */
public final class EncryptionBenchmark {
  private static final int MIB = 1 << 20;
  private static final int SIZE = 256 * MIB;
  private static final int RUNS = 5;

  private EncryptionBenchmark() {}

  public static void main(String[] args) throws IOException {
    byte[] plain = new byte[SIZE];
    new Random(1).nextBytes(plain);
    byte[] keyBytes = new byte[ArchiveKey.BYTES];
    new Random(2).nextBytes(keyBytes);
    BoundKey key = BoundKey.of(new ArchiveKey("bench", keyBytes), ArchiveIdentity.ofProcess("bench", "uid"));
    ByteArrayOutputStream sealed = new ByteArrayOutputStream(SIZE + SIZE / 1000 + 1024);
    byte[] buffer = new byte[MIB];

    double[] encrypt = new double[RUNS];
    double[] decrypt = new double[RUNS];
    double[] sha256 = new double[RUNS];
    for (int run = 0; run < RUNS; run++) {
      sealed.reset();
      long start = System.nanoTime();
      try (OutputStream out = new EncryptingOutputStream(sealed, key)) {
        for (int at = 0; at < SIZE; at += MIB) {
          out.write(plain, at, MIB);
        }
      }
      encrypt[run] = mibPerSecond(start);

      byte[] stored = sealed.toByteArray();
      start = System.nanoTime();
      try (var in = new DecryptingInputStream(new ByteArrayInputStream(stored), key)) {
        while (in.read(buffer, 0, buffer.length) >= 0) {
          // only the time matters
        }
      }
      decrypt[run] = mibPerSecond(start);

      start = System.nanoTime();
      MessageDigest digest = Sha256.newDigest();
      for (int at = 0; at < SIZE; at += MIB) {
        digest.update(plain, at, MIB);
      }
      digest.digest();
      sha256[run] = mibPerSecond(start);
    }
    System.out.printf("256 MiB, best of %d: encrypt %.0f MiB/s, decrypt %.0f MiB/s, sha256 (already paid) %.0f MiB/s%n",
        RUNS, best(encrypt), best(decrypt), best(sha256));
    System.out.printf("stored overhead: %d bytes (%.4f%%)%n", sealed.size() - SIZE, 100.0 * (sealed.size() - SIZE) / SIZE);
  }

  private static double mibPerSecond(long start) {
    return (double) SIZE / MIB / ((System.nanoTime() - start) / 1e9);
  }

  private static double best(double[] values) {
    return Arrays.stream(values).max().orElse(0);
  }
}
