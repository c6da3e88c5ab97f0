package dev.stasis.archive;

import dev.stasis.testing.Folders;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class ArchiveRoundTripTest {
  @TempDir Path temp;
  Path checkpoint;
  Path restored;

  @BeforeEach
  void createCheckpointDirectory() throws IOException {
    checkpoint = Files.createDirectory(temp.resolve("checkpoint"));
    restored = temp.resolve("restored");
    Random random = new Random(42);
    byte[] pages = new byte[3 << 20];
    random.nextBytes(pages);
    Files.write(checkpoint.resolve("pages-1.img"), pages);
    Files.writeString(checkpoint.resolve("inventory.img"), "inventory");
    Files.createDirectories(checkpoint.resolve("rootfs-diff/usr/lib"));
    Files.writeString(checkpoint.resolve("rootfs-diff/usr/lib/state.txt"), "x".repeat(100_000));
    Files.write(checkpoint.resolve("rootfs-diff/empty"), new byte[0]);
    Files.setPosixFilePermissions(checkpoint.resolve("inventory.img"), PosixFilePermissions.fromString("r-x------"));
    Files.writeString(checkpoint.resolve("a-very-long-file-name-".repeat(6) + ".img"), "long names need PAX headers");
  }

  @ParameterizedTest
  @EnumSource(ArchiveCodec.class)
  void restoresTheSameFilesAndReportsWhatItStored(ArchiveCodec codec) throws IOException {
    ByteArrayOutputStream stored = new ByteArrayOutputStream();

    ArchiveSummary summary = new ArchiveWriter().write(checkpoint, stored, codec);
    new ArchiveReader().extract(new ByteArrayInputStream(stored.toByteArray()), restored, codec,
        summary);

    assertThat(summary.storedBytes()).isEqualTo(stored.size());
    assertThat(summary.sha256()).isEqualTo(Sha256.hexOf(stored.toByteArray()));
    assertThat(summary.sizeBytes()).isGreaterThan(3 << 20);
    if (codec == ArchiveCodec.NONE) {
      assertThat(summary.sizeBytes()).isEqualTo(summary.storedBytes());
    }
    assertThat(Folders.filesIn(restored)).isEqualTo(Folders.filesIn(checkpoint));
    for (String file : Folders.filesIn(checkpoint)) {
      assertThat(restored.resolve(file)).hasSameBinaryContentAs(checkpoint.resolve(file));
    }
    assertThat(Files.getPosixFilePermissions(restored.resolve("inventory.img")))
        .isEqualTo(PosixFilePermissions.fromString("r-x------"));
  }

  @Test
  void writesEntriesInSortedOrderWithRelativeNames() throws IOException {
    ByteArrayOutputStream stored = new ByteArrayOutputStream();
    new ArchiveWriter().write(checkpoint, stored, ArchiveCodec.NONE);

    List<String> names = new ArrayList<>();
    try (TarArchiveInputStream tar = new TarArchiveInputStream(new ByteArrayInputStream(stored.toByteArray()))) {
      for (TarArchiveEntry entry; (entry = tar.getNextEntry()) != null; ) {
        names.add(entry.getName());
      }
    }
    assertThat(names).isSorted().containsExactlyInAnyOrderElementsOf(Folders.filesIn(checkpoint));
  }

  @Test
  void refusesToArchiveSymbolicLinks() throws IOException {
    Files.createSymbolicLink(checkpoint.resolve("link"), checkpoint.resolve("inventory.img"));

    assertThatThrownBy(() -> new ArchiveWriter().write(checkpoint, new ByteArrayOutputStream(), ArchiveCodec.ZSTD))
        .isInstanceOf(IOException.class)
        .hasMessageContaining("link: it is a symbolic link");
  }

  @Test
  void refusesToExtractIntoADirectoryThatHoldsFiles() throws IOException {
    ByteArrayOutputStream stored = new ByteArrayOutputStream();
    ArchiveSummary summary = new ArchiveWriter().write(checkpoint, stored, ArchiveCodec.ZSTD);
    Files.createDirectories(restored);
    Files.writeString(restored.resolve("precious"), "not from the archive");

    assertThatThrownBy(() -> new ArchiveReader().extract(new ByteArrayInputStream(stored.toByteArray()),
            restored, ArchiveCodec.ZSTD, summary))
        .hasMessageContaining("is not empty");
    assertThat(restored.resolve("precious")).hasContent("not from the archive");
  }


}
