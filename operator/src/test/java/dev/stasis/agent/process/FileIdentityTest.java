package dev.stasis.agent.process;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.archive.Manifest.RequiredPath;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileIdentityTest {
  @TempDir Path dir;

  /** gcc links the build-id it is told to, so the parser is checked against a known answer. */
  Path compile(String name, String buildIdOption) throws Exception {
    // Same source name everywhere: it is in the symbol table, and only the build-id should differ.
    Path source = Files.createDirectories(dir.resolve(name)).resolve("main.c");
    Files.writeString(source, "int main(void) { return 0; }\n");
    Path binary = dir.resolve(name).resolve("a.out");
    Process gcc = new ProcessBuilder("gcc", "-o", binary.toString(), "-Wl,--build-id=" + buildIdOption, source.toString())
        .redirectErrorStream(true).start();
    String output = new String(gcc.getInputStream().readAllBytes());
    assertThat(gcc.waitFor()).as(output).isZero();
    return binary;
  }

  @Test
  void readsTheGnuBuildIdOfAnElfFile() throws Exception {
    Path binary = compile("with-id", "0x0123456789abcdef0123456789abcdef01234567");
    assertThat(FileIdentity.buildId(binary)).contains("0123456789abcdef0123456789abcdef01234567");
  }

  @Test
  void aMappedFileWithoutBuildIdIsRecordedBySha256() throws Exception {
    Path binary = compile("no-id", "none");
    assertThat(FileIdentity.buildId(binary)).isEmpty();
    RequiredPath recorded = FileIdentity.record("/opt/no-id", RequiredPath.MAPPED, binary, false);
    assertThat(recorded.size).isEqualTo(Files.size(binary));
    assertThat(recorded.sha256).hasSize(64);
    assertThat(FileIdentity.buildId(dir.resolve("no-id/main.c"))).as("not ELF").isEmpty();
  }

  @Test
  void aFileOpenForAppendingIsRecordedWithoutItsSize() throws Exception {
    Path log = Files.writeString(dir.resolve("log"), "1\n2\n");
    RequiredPath appended = FileIdentity.record("/data/log", RequiredPath.FILE, log, true);
    assertThat(appended.size).isNull();
    Files.writeString(log, "1\n2\n3\n");
    assertThat(FileIdentity.compare(appended, log)).isEmpty();
  }

  @Test
  void namesWhatDiffers() throws Exception {
    Path binary = compile("lib", "0x" + "aa".repeat(20));
    RequiredPath recorded = FileIdentity.record("/usr/lib/libx.so", RequiredPath.MAPPED, binary, false);
    assertThat(FileIdentity.compare(recorded, binary)).isEmpty();

    assertThat(FileIdentity.compare(recorded, dir.resolve("gone")))
        .contains(new FileIdentity.Difference(true, "missing /usr/lib/libx.so"));

    Path rebuilt = compile("lib2", "0x" + "bb".repeat(20));
    assertThat(FileIdentity.compare(recorded, rebuilt)).contains(new FileIdentity.Difference(false,
        "/usr/lib/libx.so has build-id " + "bb".repeat(20) + ", " + "aa".repeat(20) + " at the checkpoint"));

    Path data = Files.writeString(dir.resolve("data"), "12345");
    RequiredPath input = FileIdentity.record("/data/in", RequiredPath.FILE, data, false);
    Files.writeString(data, "123");
    assertThat(FileIdentity.compare(input, data)).contains(new FileIdentity.Difference(false,
        "/data/in has 3 bytes, 5 at the checkpoint"));

    RequiredPath mapped = FileIdentity.record("/data/table", RequiredPath.MAPPED, Files.writeString(dir.resolve("t"), "abc"), false);
    Files.writeString(dir.resolve("t"), "abd");
    assertThat(FileIdentity.compare(mapped, dir.resolve("t"))).contains(new FileIdentity.Difference(false,
        "/data/table has other content than at the checkpoint (sha256)"));

    RequiredPath cwd = new RequiredPath("/work/run42", RequiredPath.CWD);
    assertThat(FileIdentity.compare(cwd, data)).contains(new FileIdentity.Difference(false, "/work/run42 is no longer a directory"));
    assertThat(FileIdentity.compare(new RequiredPath("/data", RequiredPath.MOUNT), dir.resolve("nfs")))
        .contains(new FileIdentity.Difference(true, "missing mount point /data"));
  }
}
