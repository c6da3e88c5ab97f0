package dev.stasis.agent.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.agent.TravellingFileLimits;
import dev.stasis.agent.WorkFailure;
import dev.stasis.archive.Manifest.RequiredPath;
import dev.stasis.archive.Sha256;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Putting back the files that travelled, on this machine's real /dev/shm (a tmpfs) and its disk. */
class TravellingFilesTest {
  static final Path ROOT = Path.of("/");
  @TempDir Path images;
  Path shm;

  @BeforeEach
  void folderInDevShm() throws Exception {
    shm = Files.createDirectories(Path.of("/dev/shm", "stasis-test-" + UUID.randomUUID()));
  }

  @AfterEach
  void removeIt() throws Exception {
    try (var files = Files.walk(shm)) {
      for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }

  /** As the checkpoint recorded it: the copy in the unpacked images, its content in the manifest. */
  RequiredPath travelled(Path path, String content) throws Exception {
    String entry = TravellingFiles.FOLDER + "/" + Files.list(images).count();
    Path copy = images.resolve(entry);
    Files.createDirectories(copy.getParent());
    Files.writeString(copy, content);
    RequiredPath required = new RequiredPath(path.toString(), RequiredPath.MAPPED);
    required.size = (long) content.length();
    required.sha256 = Sha256.hex(Sha256.newDigest().digest(content.getBytes(StandardCharsets.UTF_8)));
    required.travelsAs = entry;
    required.permissions = "rw-------";
    required.written = true;
    return required;
  }

  @Test
  void aFileThatIsNotThereIsPutBackWithItsContentAndPermissions() throws Exception {
    Path segment = shm.resolve("vader_segment.0");
    List<String> put = TravellingFiles.putBack(List.of(travelled(segment, "rank 0")), images, ROOT);

    assertThat(put).containsExactly(segment.toString());
    assertThat(segment).hasContent("rank 0");
    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(segment))).isEqualTo("rw-------");
    try (var left = Files.list(shm)) {
      assertThat(left).as("no temporary file left").containsExactly(segment);
    }
  }

  @Test
  void aFileThatIsThereWithTheRecordedContentIsLeftAlone() throws Exception {
    Path segment = Files.writeString(shm.resolve("vader_segment.0"), "rank 0");
    Object inode = Files.readAttributes(segment, "unix:ino").get("ino");

    assertThat(TravellingFiles.putBack(List.of(travelled(segment, "rank 0")), images, ROOT)).isEmpty();
    assertThat(Files.readAttributes(segment, "unix:ino").get("ino")).isEqualTo(inode);
  }

  /** Replaced by a rename: a process that still has the old file open keeps the old file, untouched. */
  @Test
  void aFileThatIsThereWithOtherContentIsReplacedWithoutTouchingTheOldOne() throws Exception {
    Path segment = Files.writeString(shm.resolve("vader_segment.0"), "later");
    try (FileChannel holder = FileChannel.open(segment, StandardOpenOption.READ)) {
      assertThat(TravellingFiles.putBack(List.of(travelled(segment, "rank 0")), images, ROOT))
          .containsExactly(segment.toString());

      assertThat(segment).hasContent("rank 0");
      ByteBuffer old = ByteBuffer.allocate(16);
      holder.read(old, 0);
      assertThat(new String(old.array(), 0, old.position(), StandardCharsets.UTF_8)).isEqualTo("later");
    }
  }

  @Test
  void aCopyThatIsNotWhatTheManifestRecordsIsRefused() throws Exception {
    Path segment = shm.resolve("vader_segment.0");
    RequiredPath recorded = travelled(segment, "rank 0");
    Files.writeString(images.resolve(recorded.travelsAs), "rank 1");

    assertThatThrownBy(() -> TravellingFiles.putBack(List.of(recorded), images, ROOT))
        .isInstanceOfSatisfying(WorkFailure.class, f -> {
          assertThat(f.reason()).isEqualTo("ArchiveCorrupted");
          assertThat(f.getMessage()).contains(segment.toString());
        });
    assertThat(segment).doesNotExist();
  }

  /** It travelled from a tmpfs, and goes back to one only: never onto a disk of the node. */
  @Test
  void aFileIsPutBackOnTmpfsOnly() throws Exception {
    Path onDisk = images.resolveSibling(images.getFileName() + "-disk").resolve("segment");
    RequiredPath recorded = travelled(onDisk, "rank 0");

    assertThatThrownBy(() -> TravellingFiles.putBack(List.of(recorded), images, ROOT))
        .isInstanceOfSatisfying(WorkFailure.class, f -> {
          assertThat(f.reason()).isEqualTo("TravellingFileNotPutBack");
          assertThat(f.getMessage()).contains("is not on one");
        });
    assertThat(onDisk).doesNotExist();
  }

  @Test
  void anEntryOrPathOutsideWhatACheckpointWritesIsRefused() throws Exception {
    RequiredPath escape = travelled(shm.resolve("x"), "rank 0");
    escape.path = "/../" + shm.getFileName();
    RequiredPath otherEntry = travelled(shm.resolve("y"), "rank 0");
    otherEntry.travelsAs = "../outside";

    for (RequiredPath doctored : List.of(escape, otherEntry)) {
      assertThatThrownBy(() -> TravellingFiles.putBack(List.of(doctored), images, shm))
          .isInstanceOfSatisfying(WorkFailure.class, f -> assertThat(f.reason()).isEqualTo("ManifestInvalid"));
    }
  }

  @Test
  void negativeLimitsAreRefused() {
    assertThatThrownBy(() -> new TravellingFileLimits(-1, 0)).isInstanceOf(IllegalArgumentException.class);
  }
}
