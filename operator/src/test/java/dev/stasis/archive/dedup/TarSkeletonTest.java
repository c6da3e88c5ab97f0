package dev.stasis.archive.dedup;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.archive.ArchiveIntegrityException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
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
  void anImageOfAnotherNameIsRefused() throws IOException {
    Path tar = kubeletTar(TarArchiveOutputStream.LONGFILE_POSIX, TarArchiveOutputStream.BIGNUMBER_POSIX);
    byte[] skeleton = skeleton(tar);
    TarSkeleton.Rebuild rebuild = new TarSkeleton.Rebuild(new ByteArrayInputStream(skeleton), OutputStream.nullOutputStream());

    assertThatThrownBy(() -> rebuild.image("pages-2.img")).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("next image is pages-1.img");
  }

  @Test
  void anImageThatIsShortOrLongIsRefused() throws IOException {
    Path tar = kubeletTar(TarArchiveOutputStream.LONGFILE_POSIX, TarArchiveOutputStream.BIGNUMBER_POSIX);
    byte[] skeleton = skeleton(tar);

    TarSkeleton.Rebuild longer = new TarSkeleton.Rebuild(new ByteArrayInputStream(skeleton), OutputStream.nullOutputStream());
    OutputStream image = longer.image("pages-1.img");
    assertThatThrownBy(() -> image.write(new byte[memory(1).length + 1])).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("longer than");

    TarSkeleton.Rebuild shorter = new TarSkeleton.Rebuild(new ByteArrayInputStream(skeleton), OutputStream.nullOutputStream());
    shorter.image("pages-1.img").write(new byte[10]);
    assertThatThrownBy(() -> shorter.image("pages-2.img")).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("pages-1.img got 10 bytes");
  }

  @Test
  void anImageLeftOutOrOneTooManyIsRefused() throws IOException {
    Path tar = kubeletTar(TarArchiveOutputStream.LONGFILE_POSIX, TarArchiveOutputStream.BIGNUMBER_POSIX);
    byte[] skeleton = skeleton(tar);

    TarSkeleton.Rebuild missing = new TarSkeleton.Rebuild(new ByteArrayInputStream(skeleton), OutputStream.nullOutputStream());
    missing.image("pages-1.img").write(memory(1));
    assertThatThrownBy(missing::finish).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("an image the chunk index does not list");

    TarSkeleton.Rebuild extra = new TarSkeleton.Rebuild(new ByteArrayInputStream(skeleton), OutputStream.nullOutputStream());
    extra.image("pages-1.img").write(memory(1));
    extra.image("pages-2.img").write(memory(2));
    assertThatThrownBy(() -> extra.image("pages-3.img")).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("no image left");
  }

  @Test
  void aTruncatedOrForeignSkeletonIsRefused() throws IOException {
    Path tar = kubeletTar(TarArchiveOutputStream.LONGFILE_POSIX, TarArchiveOutputStream.BIGNUMBER_POSIX);
    byte[] skeleton = skeleton(tar);

    TarSkeleton.Rebuild truncated = new TarSkeleton.Rebuild(
        new ByteArrayInputStream(Arrays.copyOf(skeleton, skeleton.length - 100)), OutputStream.nullOutputStream());
    truncated.image("pages-1.img").write(memory(1));
    truncated.image("pages-2.img").write(memory(2));
    assertThatThrownBy(truncated::finish).isInstanceOf(ArchiveIntegrityException.class).hasMessageContaining("truncated");

    assertThatThrownBy(() -> new TarSkeleton.Rebuild(new ByteArrayInputStream(Files.readAllBytes(tar)),
        OutputStream.nullOutputStream())).isInstanceOf(ArchiveIntegrityException.class)
        .hasMessageContaining("not a tar skeleton");
  }

  private void assertRoundTrip(Path tar) throws IOException {
    byte[] original = Files.readAllBytes(tar);
    byte[] skeleton = skeleton(tar);
    assertThat(skeleton.length).isLessThan(original.length - memory(1).length - memory(2).length + 200);

    ByteArrayOutputStream rebuilt = new ByteArrayOutputStream();
    TarSkeleton.Rebuild rebuild = new TarSkeleton.Rebuild(new ByteArrayInputStream(skeleton), rebuilt);
    assertThat(rebuild.tarBytes()).isEqualTo(original.length);
    try (OutputStream image = rebuild.image("pages-1.img")) {
      image.write(memory(1));
    }
    try (OutputStream image = rebuild.image("pages-2.img")) {
      image.write(memory(2));
    }
    rebuild.finish();

    assertThat(rebuilt.toByteArray()).isEqualTo(original);
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
