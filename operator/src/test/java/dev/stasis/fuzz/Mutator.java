package dev.stasis.fuzz;

import java.util.Arrays;
import java.util.Random;

/**
 * Seeded mutations of a valid input, AFL-style: bit flips, byte replacements with interesting
 * values, insertions, deletions, truncations and splices of the input with itself. The seed makes
 * a failure reproducible; it is printed in every assertion message.
 */
final class Mutator {
  private static final byte[] INTERESTING = {0, 1, -1, 0x7f, (byte) 0x80, '"', '{', '}', '[', ']', ',', ':', '\\', 'e', '0'};

  private final Random random;

  Mutator(long seed) {
    this.random = new Random(seed);
  }

  byte[] mutate(byte[] input) {
    byte[] out = input.clone();
    int rounds = 1 + random.nextInt(4);
    for (int i = 0; i < rounds; i++) {
      out = mutateOnce(out);
    }
    return out;
  }

  private byte[] mutateOnce(byte[] in) {
    if (in.length == 0) {
      return new byte[] {INTERESTING[random.nextInt(INTERESTING.length)]};
    }
    int at = random.nextInt(in.length);
    switch (random.nextInt(6)) {
      case 0 -> {
        byte[] out = in.clone();
        out[at] ^= (byte) (1 << random.nextInt(8));
        return out;
      }
      case 1 -> {
        byte[] out = in.clone();
        out[at] = INTERESTING[random.nextInt(INTERESTING.length)];
        return out;
      }
      case 2 -> {
        byte[] out = new byte[in.length + 1];
        System.arraycopy(in, 0, out, 0, at);
        out[at] = (byte) random.nextInt(256);
        System.arraycopy(in, at, out, at + 1, in.length - at);
        return out;
      }
      case 3 -> {
        int length = 1 + random.nextInt(Math.min(16, in.length - at));
        byte[] out = new byte[in.length - length];
        System.arraycopy(in, 0, out, 0, at);
        System.arraycopy(in, at + length, out, at, in.length - at - length);
        return out;
      }
      case 4 -> {
        return Arrays.copyOf(in, at);
      }
      default -> {
        int from = random.nextInt(in.length);
        int length = 1 + random.nextInt(Math.min(32, in.length - from));
        byte[] out = new byte[in.length + length];
        System.arraycopy(in, 0, out, 0, at);
        System.arraycopy(in, from, out, at, length);
        System.arraycopy(in, at, out, at + length, in.length - at);
        return out;
      }
    }
  }
}
