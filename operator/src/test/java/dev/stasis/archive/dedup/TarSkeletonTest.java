package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.ArchiveIntegrityException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A kubelet tar split into a skeleton and its pages images' data, and put back together byte for byte. */
class TarSkeletonTest {
  private static final String LONG_NAME = "checkpoint/" + "a-very-long-folder-name-".repeat(6) + "/tmp-file.img";

  @TempDir
  Path dir;

  @Test
  void aKubeletTarWithPaxHeadersComesBackByteForByte() throws IOException {
    assertRoundTrip(kubeletTar(TarArchiveOutputStream.LONGFILE_POSIX, TarArchiveOutputStream.BIGNUMBER_POSIX));
  }

  @Test
  void aKubeletTarWithGnuLongNamesComesBackByteForByte() throws IOException {
    assertRoundTrip(kubeletTar(TarArchiveOutputStream.LONGFILE_GNU, TarArchiveOutputStream.BIGNUMBER_STAR));
  }

  @Test
  void findsEveryFileWhereItsDataIs() throws IOException {
    Path tar = kubeletTar(TarArchiveOutputStream.LONGFILE_POSIX, TarArchiveOutputStream.BIGNUMBER_POSIX);
    byte[] bytes = Files.readAllBytes(tar);

    List<TarSkeleton.Entry> files = TarSkeleton.files(tar);

    assertThat(files).extracting(TarSkeleton.Entry::name).containsExactly("config.dump", "checkpoint/pagemap-1.img",
        "checkpoint/pages-1.img", LONG_NAME, "checkpoint/pages-2.img", "rootfs-diff.tar");
    TarSkeleton.Entry pages = files.get(2);
    assertThat(Arrays.copyOfRange(bytes, (int) pages.dataOffset(), (int) (pages.dataOffset() + pages.bytes())))
        .isEqualTo(memory(1));
  }

  @Test
  void aTruncatedForeignOrOverlongSkeletonIsRefused() throws IOException {
    Path tar = kubeletTar(TarArchiveOutputStream.LONGFILE_POSIX, TarArchiveOutputStream.BIGNUMBER_POSIX);
    byte[] skeleton = skeleton(tar);

    assertThatThrownBy(() -> layOut(Arrays.copyOf(skeleton, skeleton.length - 100)))
        .isInstanceOf(ArchiveIntegrityException.class).hasMessageContaining("truncated");
    assertThatThrownBy(() -> layOut(Files.readAllBytes(tar))).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("not a tar skeleton");
    byte[] longer = Arrays.copyOf(skeleton, skeleton.length + 1);
    assertThatThrownBy(() -> layOut(longer)).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("goes on after its end");
  }

  @Test
  void aLengthAlteredInTheSkeletonIsRefused() throws IOException {
    Path tar = kubeletTar(TarArchiveOutputStream.LONGFILE_POSIX, TarArchiveOutputStream.BIGNUMBER_POSIX);
    byte[] skeleton = skeleton(tar);
    // The first record's length (after magic, version and the tar's length): one more than the tar holds.
    byte[] altered = skeleton.clone();
    altered[4 + 1 + 8 + 1] = 0x7f;

    assertThatThrownBy(() -> layOut(altered)).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("does not fit in the " + Files.size(tar) + " bytes of the tar");
  }

  private void assertRoundTrip(Path tar) throws IOException {
    byte[] original = Files.readAllBytes(tar);
    byte[] skeleton = skeleton(tar);
    assertThat(skeleton.length).isLessThan(original.length - memory(1).length - memory(2).length + 200);

    Path rebuilt = dir.resolve("rebuilt.tar");
    try (FileChannel channel = FileChannel.open(rebuilt, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
      TarSkeleton.Rebuild rebuild = new TarSkeleton.Rebuild(new ByteArrayInputStream(skeleton));
      assertThat(rebuild.tarBytes()).isEqualTo(original.length);
      List<TarSkeleton.Image> images = rebuild.layOut(channel);
      assertThat(images).extracting(TarSkeleton.Image::fileName).containsExactly("pages-1.img", "pages-2.img");
      // The images' data in any order, as the chunks arrive.
      channel.write(ByteBuffer.wrap(memory(2)), images.get(1).offset());
      channel.write(ByteBuffer.wrap(memory(1)), images.get(0).offset());
    }

    assertThat(Files.readAllBytes(rebuilt)).isEqualTo(original);
  }

  private List<TarSkeleton.Image> layOut(byte[] skeleton) throws IOException {
    Path file = Files.createTempFile(dir, "laid-out", ".tar");
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
      return new TarSkeleton.Rebuild(new ByteArrayInputStream(skeleton)).layOut(channel);
    }
  }

  /** The skeleton with the data of both pages images left out. */
  private static byte[] skeleton(Path tar) throws IOException {
    List<TarSkeleton.Image> images = TarSkeleton.files(tar).stream().filter(f -> f.name().matches("checkpoint/pages-.*"))
        .map(f -> new TarSkeleton.Image(Path.of(f.name()).getFileName().toString(), f.dataOffset(), f.bytes()))
        .toList();
    assertThat(images).hasSize(2);
    try (FileChannel channel = FileChannel.open(tar)) {
      return TarSkeleton.split(channel, Files.size(tar), images).readAllBytes();
    }
  }

  /** As the kubelet's archive: small files, the CRIU images under checkpoint/, a long name, a nested tar. */
  private Path kubeletTar(int longFileMode, int bigNumberMode) throws IOException {
    Path tar = dir.resolve("checkpoint-" + longFileMode + ".tar");
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(Files.newOutputStream(tar))) {
      out.setLongFileMode(longFileMode);
      out.setBigNumberMode(bigNumberMode);
      entry(out, "config.dump", "{\"rootfsImageName\":\"registry/app:1\"}".getBytes(StandardCharsets.UTF_8));
      directory(out, "checkpoint/");
      entry(out, "checkpoint/pagemap-1.img", new byte[] {1, 2, 3});
      entry(out, "checkpoint/pages-1.img", memory(1));
      entry(out, LONG_NAME, "x".repeat(700).getBytes(StandardCharsets.UTF_8));
      entry(out, "checkpoint/pages-2.img", memory(2));
      entry(out, "rootfs-diff.tar", new byte[1536]);
    }
    return tar;
  }

  private static byte[] memory(int seed) {
    return Chunks.random(seed * 5 * 4096, seed);
  }

  private static void entry(TarArchiveOutputStream out, String name, byte[] data) throws IOException {
    TarArchiveEntry entry = new TarArchiveEntry(name);
    entry.setSize(data.length);
    entry.setMode(0600);
    out.putArchiveEntry(entry);
    out.write(data);
    out.closeArchiveEntry();
  }

  private static void directory(TarArchiveOutputStream out, String name) throws IOException {
    out.putArchiveEntry(new TarArchiveEntry(name));
    out.closeArchiveEntry();
  }
}
