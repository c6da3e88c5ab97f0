package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.dedup.ChunkIndex.ChunkRef;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

class ChunkIndexTest {
  private static final ChunkRef FIRST = new ChunkRef("0a".repeat(32), 131_072, 131_100);
  private static final ChunkRef SECOND = new ChunkRef("0b".repeat(32), 4_096, 1_200);
  private static final ChunkRef THIRD = new ChunkRef("0c".repeat(32), 65_536, 65_600,
      ChunkLocation.inPack("7d".repeat(16), 1L << 33));

  @Test
  void readsBackEveryImageAndChunkInOrderAndVersionTwoRecordsNoImageSha256() throws IOException {
    List<String> seen = new ArrayList<>();
    ChunkIndex.read(new ByteArrayInputStream(twoImages()), recorder(seen));
    assertThat(seen).containsExactly("image sha256s false",
        "image pages-1.img", "pages-1.img " + FIRST, "pages-1.img " + SECOND, "end pages-1.img 135168 null",
        "image pages-2.img", "pages-2.img " + THIRD, "end pages-2.img 65536 null");
    // A size and nothing else after each image's end tag: 32 bytes of sha256 fewer per image than version 1.
    assertThat(twoImages()).hasSize(4 + 1 + 2 * (1 + 2 + 11) + 2 * (1 + 32 + 4 + 4 + 1) + (1 + 32 + 4 + 4 + 1 + 16 + 8)
        + 2 * (1 + 8) + 1 + 4);
  }

  private static ChunkIndex.Visitor recorder(List<String> seen) {
    return new ChunkIndex.Visitor() {
      @Override
      public void imageSha256s(boolean recorded) {
        seen.add("image sha256s " + recorded);
      }

      @Override
      public void image(String fileName) {
        seen.add("image " + fileName);
      }

      @Override
      public void chunk(String fileName, ChunkRef chunk) {
        seen.add(fileName + " " + chunk);
      }

      @Override
      public void imageEnd(String fileName, long sizeBytes, String sha256) {
        seen.add("end " + fileName + " " + sizeBytes + " " + sha256);
      }
    };
  }

  @Test
  void aVersionOneIndexWrittenBeforePacksStillReadsWithEveryChunkLooseAndItsImageSha256() throws IOException {
    // Version 1 as the previous writer made it: the same records, a chunk without a location.
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    DataOutputStream out = new DataOutputStream(bytes);
    out.write("STSI".getBytes());
    out.writeByte(1);
    out.writeByte(1);
    out.writeShort(11);
    out.write("pages-1.img".getBytes());
    out.writeByte(2);
    out.write(HexFormat.of().parseHex("0a".repeat(32)));
    out.writeInt(131_072);
    out.writeInt(131_100);
    out.writeByte(3);
    out.writeLong(131_072);
    out.write(HexFormat.of().parseHex("11".repeat(32)));
    out.writeByte(0);
    out.writeInt(1);
    List<ChunkRef> chunks = new ArrayList<>();
    ChunkIndex.read(new ByteArrayInputStream(bytes.toByteArray()), (fileName, chunk) -> chunks.add(chunk));
    assertThat(chunks).containsExactly(FIRST);
    assertThat(chunks.get(0).location().loose()).isTrue();
    List<String> seen = new ArrayList<>();
    ChunkIndex.read(new ByteArrayInputStream(bytes.toByteArray()), recorder(seen));
    assertThat(seen).containsExactly("image sha256s true", "image pages-1.img", "pages-1.img " + FIRST,
        "end pages-1.img 131072 " + "11".repeat(32));
  }

  @Test
  void refusesAnUnknownLocationKind() throws IOException {
    byte[] whole = twoImages();
    byte[] unknown = whole.clone();
    int at = indexOf(whole, HexFormat.of().parseHex("7d".repeat(16)));
    unknown[at - 1] = 9;
    assertThatThrownBy(() -> read(unknown)).hasMessageContaining("unknown kind 9");
  }

  @Test
  void refusesAnIndexCutShortAnywhere() {
    byte[] whole = twoImages();
    for (int length = 0; length < whole.length; length++) {
      byte[] cut = Arrays.copyOf(whole, length);
      assertThatThrownBy(() -> read(cut)).as("cut at %d", length).isInstanceOf(ArchiveIntegrityException.class);
    }
  }

  @Test
  void refusesSizesThatDoNotAddUpAndBytesAfterTheEnd() throws IOException {
    byte[] whole = twoImages();
    // pages-1.img's size (u64 after its end tag) is the 8 bytes right after FIRST and SECOND.
    byte[] wrongSize = whole.clone();
    int sizeOffset = indexOf(whole, new byte[] {0, 0, 0, 0, 0, 2, 16, 0}); // 135168
    wrongSize[sizeOffset + 7] = 1;
    assertThatThrownBy(() -> read(wrongSize)).hasMessageContaining("pages-1.img is 135169 bytes by the chunk index");
    byte[] trailing = Arrays.copyOf(whole, whole.length + 1);
    assertThatThrownBy(() -> read(trailing)).hasMessageContaining("bytes after its end");
    byte[] otherMagic = whole.clone();
    otherMagic[0] = 'X';
    assertThatThrownBy(() -> read(otherMagic)).hasMessageContaining("not a chunk index");
  }

  @Test
  void refusesImageNamesThatAreNotPagesImagesAndChunksOutsideImages() throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ChunkIndex.Writer writer = new ChunkIndex.Writer(out);
    assertThatThrownBy(() -> writer.startImage("../../etc/passwd")).hasMessageContaining("pages-<n>.img");
    assertThatThrownBy(() -> writer.chunk(FIRST)).hasMessageContaining("none is open");
    byte[] renamed = twoImages();
    int at = indexOf(renamed, "pages-2.img".getBytes());
    System.arraycopy("../etc/x.im".getBytes(), 0, renamed, at, 11);
    assertThatThrownBy(() -> read(renamed)).hasMessageContaining("not a CRIU pages image");
  }

  private static byte[] twoImages() {
    try {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      ChunkIndex.Writer writer = new ChunkIndex.Writer(out);
      writer.startImage("pages-1.img");
      writer.chunk(FIRST);
      writer.chunk(SECOND);
      writer.endImage(135_168);
      writer.startImage("pages-2.img");
      writer.chunk(THIRD);
      writer.endImage(65_536);
      writer.finish();
      return out.toByteArray();
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  private static void read(byte[] index) throws IOException {
    ChunkIndex.read(new ByteArrayInputStream(index), (fileName, chunk) -> {});
  }

  private static int indexOf(byte[] haystack, byte[] needle) {
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      if (Arrays.equals(haystack, i, i + needle.length, needle, 0, needle.length)) {
        return i;
      }
    }
    throw new AssertionError("not found");
  }
}
