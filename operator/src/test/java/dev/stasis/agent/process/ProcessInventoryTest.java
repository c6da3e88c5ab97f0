package dev.stasis.agent.process;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.stasis.archive.Manifest.RequiredPath;
import dev.stasis.criu.RegularFiles;
import dev.stasis.testing.Workloads;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ProcessInventoryTest {
  // open(2) flags and st_mode kinds as CRIU records them in files.img
  static final int O_RDONLY = 0;
  static final int O_WRONLY = 1;
  static final int O_RDWR = 2;
  static final int O_APPEND = 02000;
  static final int S_IFREG = 0100000;
  static final int S_IFCHR = 0020000;

  @TempDir Path dir;

  @Test
  void recordsWhatARealProcessDependsOn() throws Exception {
    Path log = Files.createDirectories(dir.resolve("run42")).resolve("log.lammps");
    try (var writer = Workloads.startInPidNamespace("openfile", log.toString())) {
      await().atMost(Duration.ofSeconds(10)).until(() -> Files.exists(log) && Files.size(log) > 0);

      ProcessInventory inventory = ProcessInventory.of(List.of(writer.pid()));
      // As CRIU records a file open O_WRONLY|O_APPEND: without a size (it does not check it).
      List<RequiredPath> required = inventory.requiredPaths(List.of(new RegularFiles.RegularFile(log.toString(), null,
          O_WRONLY | O_APPEND, S_IFREG, false)));

      RequiredPath exe = find(required, Workloads.binary("openfile").toString());
      assertThat(exe.kind).isEqualTo(RequiredPath.EXECUTABLE);
      assertThat(exe.buildId).hasSize(40);
      assertThat(exe.size).isEqualTo(Files.size(Workloads.binary("openfile")));
      assertThat(required).anySatisfy(p -> {
        assertThat(p.path).contains("libc.so");
        assertThat(p.kind).isEqualTo(RequiredPath.MAPPED);
        assertThat(p.buildId).hasSize(40);
      });
      RequiredPath open = find(required, log.toString());
      assertThat(open.kind).isEqualTo(RequiredPath.FILE);
      assertThat(open.size).isNull();
      assertThat(open.buildId).isNull();
      assertThat(open.written).isTrue();
      assertThat(find(required, Path.of("").toAbsolutePath().toString()).kind).isEqualTo(RequiredPath.CWD);
      assertThat(find(required, "/").kind).isEqualTo(RequiredPath.ROOT);
      assertThat(inventory.tcpConnections()).isEmpty();
      assertThat(inventory.gpuDevices()).isEmpty();
    }
  }

  @Test
  void findsTheEstablishedConnectionsOfATcpPair() throws Exception {
    Path out = dir.resolve("count");
    try (var pair = Workloads.startInPidNamespace("tcppair", out.toString())) {
      await().atMost(Duration.ofSeconds(10)).until(() -> Files.exists(out) && Files.size(out) > 0);

      ProcessInventory inventory = ProcessInventory.of(ProcessTree.members(pair.pid()));

      // Both ends of the one connection belong to the tree.
      assertThat(inventory.tcpConnections()).hasSize(2)
          .allMatch(c -> c.matches("127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:\\d+"));
    }
  }

  /**
   * The path /proc/PID/maps shows for a mapped file is the agent's; resolved under the process's
   * root (/proc/PID/root), which the process chose (here: it chrooted after mapping), it may name
   * something else, such as a FIFO that blocks whoever opens it for reading until a writer comes,
   * that is, forever. The mapped file itself, reached through /proc/PID/map_files, is recorded, at once.
   */
  @Test
  void aMappedFileIsReadAsMappedNotByAPathTheProcessControls() throws Exception {
    Path data = Files.createDirectories(dir.resolve("data")).resolve("table.bin");
    byte[] content = new byte[8192];
    new java.util.Random(5).nextBytes(content);
    Files.write(data, content);
    Path newRoot = Files.createDirectories(dir.resolve("jail"));
    Path decoy = newRoot.resolve(data.toString().substring(1));
    Files.createDirectories(decoy.getParent());
    assertThat(new ProcessBuilder("mkfifo", decoy.toString()).start().waitFor()).isZero();
    Path out = dir.resolve("count");
    try (var mapper = Workloads.startInPidNamespace("mapfile", data.toString(), out.toString(), newRoot.toString())) {
      await().atMost(Duration.ofSeconds(10)).until(() -> Files.exists(out) && Files.size(out) > 0);

      ProcessInventory inventory = assertTimeoutPreemptively(Duration.ofSeconds(20),
          () -> ProcessInventory.of(List.of(mapper.pid())), "reading the mapped file blocked");

      RequiredPath mapped = inventory.paths().get(data.toString());
      assertThat(mapped).as("recorded from the mapping").isNotNull();
      assertThat(mapped.kind).isEqualTo(RequiredPath.MAPPED);
      assertThat(mapped.size).isEqualTo(content.length);
      assertThat(mapped.sha256).isEqualTo(dev.stasis.archive.Sha256.hex(dev.stasis.archive.Sha256.newDigest()
          .digest(content)));
    }
  }

  /**
   * A file the tree maps shared and writable (an MPI transport's segment in /dev/shm) changes
   * with every step the job takes: it is recorded without content, and with the size CRIU saw
   * while the tree was frozen; so is a log it writes without appending. Read-only files keep
   * their content identity.
   */
  @Test
  void filesTheTreeWritesAreRecordedAsCriuSawThemWithoutContent() throws Exception {
    Path segment = Path.of("/dev/shm", "stasis-inventory-" + java.util.UUID.randomUUID());
    Path log = dir.resolve("job.log");
    try (var job = Workloads.startInPidNamespace("shmjob", segment.toString(), log.toString(), "100000", "5")) {
      await().atMost(Duration.ofSeconds(10)).until(() -> Files.exists(log) && Files.size(log) > 0);

      ProcessInventory inventory = ProcessInventory.of(ProcessTree.members(job.pid()));
      assertThat(inventory.paths().get(segment.toString())).satisfies(mapped -> {
        assertThat(mapped.kind).isEqualTo(RequiredPath.MAPPED);
        assertThat(mapped.sha256).as("no content: it changes every step").isNull();
        assertThat(mapped.written).isTrue();
      });
      List<RequiredPath> required = inventory.requiredPaths(List.of(
          new RegularFiles.RegularFile(segment.toString(), 65536L, O_RDONLY, S_IFREG, true),
          new RegularFiles.RegularFile(log.toString(), 1234L, O_WRONLY, S_IFREG, false)));

      assertThat(find(required, segment.toString())).satisfies(s -> {
        assertThat(s.size).isEqualTo(65536L);
        assertThat(s.written).isTrue();
        assertThat(s.sha256).isNull();
      });
      assertThat(find(required, log.toString())).satisfies(l -> {
        assertThat(l.size).as("CRIU's, not the file's now").isEqualTo(1234L);
        assertThat(l.written).isTrue();
      });
      assertThat(required).filteredOn(p -> p.path.contains("libc.so")).allSatisfy(p -> {
        assertThat(p.written).isNull();
        assertThat(p.buildId).hasSize(40);
      });
    } finally {
      Files.deleteIfExists(segment);
    }
  }

  /** A /proc as the kernel would show it, for what this machine cannot produce: GPUs, IPv6, other mounts. */
  @Test
  void readsMountsGpusAndIpv6FromProc() throws Exception {
    Path data = Files.createDirectories(dir.resolve("data set"));
    Path input = Files.writeString(data.resolve("in.txt"), "input");
    Path app = Files.writeString(Files.createDirectories(dir.resolve("bin")).resolve("app"), "not ELF");
    Path proc = dir.resolve("proc");
    Path p = Files.createDirectories(proc.resolve("7"));
    Files.createSymbolicLink(p.resolve("exe"), app);
    Files.createSymbolicLink(p.resolve("cwd"), data);
    Files.createSymbolicLink(p.resolve("root"), Path.of("/"));
    Files.createDirectories(p.resolve("ns"));
    Files.createSymbolicLink(p.resolve("ns/net"), Path.of("net:[4026531840]"));
    Files.writeString(p.resolve("maps"), String.join("\n",
        "55d0c0a00000-55d0c0a01000 r--p 00000000 fe:00 1234   " + app,
        "7f0000000000-7f0000001000 rw-s 00000000 00:05 99     /dev/nvidia0",
        "7f0000002000-7f0000003000 rw-p 00000000 00:00 0      [heap]",
        "7f0000004000-7f0000005000 r--p 00000000 fe:00 77     /gone/lib.so (deleted)", ""));
    Path fds = Files.createDirectories(p.resolve("fd"));
    Files.createSymbolicLink(fds.resolve("4"), Path.of("socket:[111]"));
    Files.createSymbolicLink(fds.resolve("5"), Path.of("/dev/nvidiactl"));
    Files.createSymbolicLink(fds.resolve("6"), Path.of("socket:[112]"));
    String dataMount = data.toString().replace(" ", "\\040");
    Files.writeString(p.resolve("mountinfo"), String.join("\n",
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
        "40 27 0:50 / " + dataMount + " rw,relatime shared:7 - nfs4 fileserver:/export/data rw", ""));
    Files.createDirectories(p.resolve("net"));
    String header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
    Files.writeString(p.resolve("net/tcp"), header
        + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 110 1\n"
        + "   1: 0100007F:1F90 0100007F:A0B3 01 00000000:00000000 00:00000000 00000000     0        0 111 1\n");
    Files.writeString(p.resolve("net/tcp6"), header
        + "   0: 00000000000000000000000001000000:0050 00000000000000000000000001000000:C350 01 0:0 00:0 0 0 0 112 1\n");

    ProcessInventory inventory = ProcessInventory.of(proc, List.of(7L));
    List<RequiredPath> required = inventory.requiredPaths(List.of(
        new RegularFiles.RegularFile(input.toString(), 5L, O_RDONLY, S_IFREG, false),
        new RegularFiles.RegularFile(app.toString(), 7L, O_RDONLY, S_IFREG, false),
        new RegularFiles.RegularFile("/tmp/deleted-since", 3L, O_RDONLY, S_IFREG, false),
        new RegularFiles.RegularFile("/dev/null", null, O_RDWR, S_IFCHR, false)));

    assertThat(required).extracting(r -> r.kind + " " + r.path).containsExactlyInAnyOrder(
        "root /", "executable " + app, "cwd " + data, "file " + input, "mount " + data);
    RequiredPath mount = required.stream().filter(r -> r.kind.equals(RequiredPath.MOUNT)).findFirst().orElseThrow();
    assertThat(mount.fsType).isEqualTo("nfs4");
    assertThat(mount.source).isEqualTo("fileserver:/export/data");
    assertThat(find(required, input.toString()).size).isEqualTo(5);
    assertThat(find(required, app.toString()).sha256).hasSize(64);
    assertThat(inventory.gpuDevices()).containsExactly("/dev/nvidia0", "/dev/nvidiactl");
    assertThat(inventory.tcpConnections()).containsExactly("127.0.0.1:8080 -> 127.0.0.1:41139", "[0:0:0:0:0:0:0:1]:80 -> [0:0:0:0:0:0:0:1]:50000");
  }

  private static RequiredPath find(List<RequiredPath> required, String path) {
    return required.stream().filter(p -> p.path.equals(path)).findFirst()
        .orElseThrow(() -> new AssertionError(path + " not recorded in " + required.stream().map(p -> p.path).toList()));
  }
}
