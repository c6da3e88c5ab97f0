package dev.stasis.archive.dedup;

import java.io.ByteArrayInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/** The chunks a chunker cut, copied out, for tests to compare. */
record Chunks(List<byte[]> list) {
  static Chunks cut(Chunker chunker, byte[] image) throws IOException {
    List<byte[]> list = new ArrayList<>();
    chunker.cut(new ShortReads(new ByteArrayInputStream(image)),
        (bytes, offset, length) -> list.add(Arrays.copyOfRange(bytes, offset, offset + length)));
    return new Chunks(list);
  }

  byte[] joined() {
    byte[] all = new byte[list.stream().mapToInt(c -> c.length).sum()];
    int at = 0;
    for (byte[] chunk : list) {
      System.arraycopy(chunk, 0, all, at, chunk.length);
      at += chunk.length;
    }
    return all;
  }

  /** Bytes of chunks that {@code before} does not have: what a checkpoint after it would upload. */
  long newBytesAfter(Chunks before) {
    Set<String> known = new HashSet<>();
    before.list.forEach(c -> known.add(Arrays.toString(c)));
    return list.stream().filter(c -> !known.contains(Arrays.toString(c))).mapToLong(c -> c.length).sum();
  }

  static byte[] random(int length, long seed) {
    byte[] bytes = new byte[length];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  static byte[] splice(byte[] image, int at, int remove, byte[] insert) {
    byte[] result = new byte[image.length - remove + insert.length];
    System.arraycopy(image, 0, result, 0, at);
    System.arraycopy(insert, 0, result, at, insert.length);
    System.arraycopy(image, at + remove, result, at + insert.length, image.length - at - remove);
    return result;
  }

  /** Reads in uneven pieces, as a pipe or a socket does, so chunkers cannot rely on full reads. */
  private static final class ShortReads extends FilterInputStream {
    private final Random random = new Random(7);

    ShortReads(InputStream in) {
      super(in);
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      return super.read(b, off, Math.min(len, 1 + random.nextInt(100_000)));
    }
  }
}
