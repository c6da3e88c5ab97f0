package dev.stasis.testing;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Doctors the cpuinfo.img that {@code criu cpuinfo dump} writes, to pose as a CPU this machine is
 * not. The image is CRIU's usual framing (two magic words, a little-endian length) around one
 * protobuf {@code cpuinfo_entry} whose {@code x86_entry} (field 1) lists the CPU's capability words
 * as repeated field 6 (images/cpuinfo.proto); bit {@code 32 * word + bit} is X86_FEATURE_* of
 * compel's asm/cpu.h.
 */
public final class CpuinfoImages {
  /** X86_FEATURE_FMA4 (AMD family 15h only) and X86_FEATURE_AVX512_4FMAPS (Xeon Phi only): no CPU has both. */
  public static final int[] NO_CPU_HAS_ALL = {6 * 32 + 16, 18 * 32 + 3};

  private static final int HEADER = 8;

  private CpuinfoImages() {}

  /** The image with the given capability bits set in its x86 entry. */
  public static byte[] withCapabilities(byte[] image, int... bits) {
    ByteBuffer in = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
    int length = in.getInt(HEADER);
    byte[] entry = Arrays.copyOfRange(image, HEADER + 4, HEADER + 4 + length);
    byte[] doctored = rewriteEntry(entry, bits);
    ByteBuffer out = ByteBuffer.allocate(HEADER + 4 + doctored.length + image.length - (HEADER + 4 + length))
        .order(ByteOrder.LITTLE_ENDIAN);
    out.put(image, 0, HEADER).putInt(doctored.length).put(doctored).put(image, HEADER + 4 + length,
        image.length - (HEADER + 4 + length));
    return out.array();
  }

  private static byte[] rewriteEntry(byte[] entry, int[] bits) {
    ByteBuffer in = ByteBuffer.wrap(entry);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    while (in.hasRemaining()) {
      int tag = (int) varint(in);
      if (tag == (1 << 3 | 2)) {
        byte[] x86 = new byte[(int) varint(in)];
        in.get(x86);
        byte[] rewritten = rewriteX86(x86, bits);
        writeVarint(out, tag);
        writeVarint(out, rewritten.length);
        out.writeBytes(rewritten);
      } else {
        copyField(tag, in, out);
      }
    }
    return out.toByteArray();
  }

  private static byte[] rewriteX86(byte[] x86, int[] bits) {
    ByteBuffer in = ByteBuffer.wrap(x86);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    int word = 0;
    while (in.hasRemaining()) {
      int tag = (int) varint(in);
      if (tag == (6 << 3)) {
        long value = varint(in);
        for (int bit : bits) {
          if (bit / 32 == word) {
            value |= 1L << (bit % 32);
          }
        }
        writeVarint(out, tag);
        writeVarint(out, value);
        word++;
      } else {
        copyField(tag, in, out);
      }
    }
    return out.toByteArray();
  }

  private static void copyField(int tag, ByteBuffer in, ByteArrayOutputStream out) {
    writeVarint(out, tag);
    switch (tag & 7) {
      case 0 -> writeVarint(out, varint(in));
      case 2 -> {
        byte[] bytes = new byte[(int) varint(in)];
        in.get(bytes);
        writeVarint(out, bytes.length);
        out.writeBytes(bytes);
      }
      case 1 -> copy(in, out, 8);
      case 5 -> copy(in, out, 4);
      default -> throw new IllegalArgumentException("unexpected wire type in cpuinfo image: " + (tag & 7));
    }
  }

  private static void copy(ByteBuffer in, ByteArrayOutputStream out, int n) {
    byte[] bytes = new byte[n];
    in.get(bytes);
    out.writeBytes(bytes);
  }

  private static long varint(ByteBuffer in) {
    long result = 0;
    for (int shift = 0; ; shift += 7) {
      byte b = in.get();
      result |= (long) (b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        return result;
      }
    }
  }

  private static void writeVarint(ByteArrayOutputStream out, long value) {
    while ((value & ~0x7fL) != 0) {
      out.write((int) ((value & 0x7f) | 0x80));
      value >>>= 7;
    }
    out.write((int) value);
  }
}
