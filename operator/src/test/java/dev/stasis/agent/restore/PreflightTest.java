package dev.stasis.agent.restore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.stasis.agent.process.FileIdentity;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Manifest.RequiredPath;
import dev.stasis.criu.Criu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The path half of the pre-flight; the CPU half runs real CRIU in PlacementIT and CriuCompatibilityChecksIT. */
class PreflightTest {
  @TempDir Path hostRoot;
  @TempDir Path workDir;
  Preflight preflight;

  @BeforeEach
  void setUp() {
    // Manifests without cpuinfo never run CRIU.
    preflight = new Preflight(new Criu(Path.of("/nonexistent/criu"), Map.of()), hostRoot);
  }

  Manifest manifest(RequiredPath... paths) {
    Manifest m = new Manifest();
    m.source = new Manifest.Source();
    m.source.node = "node-a";
    m.paths = List.of(paths);
    return m;
  }

  RequiredPath recorded(String path, String kind, String content) throws Exception {
    Path file = hostRoot.resolve(path.substring(1));
    Files.createDirectories(file.getParent());
    Files.writeString(file, content);
    return FileIdentity.record(path, kind, file, false);
  }

  @Test
  void passesWhenEverythingIsWhereItWas() throws Exception {
    Files.createDirectories(hostRoot.resolve("data/run42"));
    preflight.check(manifest(recorded("/data/run42/in.dat", RequiredPath.FILE, "abc"),
        new RequiredPath("/data/run42", RequiredPath.CWD)), false, workDir, "node-b");
  }

  @Test
  void listsEveryMissingPath() throws Exception {
    RequiredPath log = recorded("/data/run42/log.lammps", RequiredPath.FILE, "step 1\n");
    RequiredPath input = recorded("/data/run42/in.lj", RequiredPath.FILE, "units lj\n");
    Files.move(hostRoot.resolve("data/run42"), hostRoot.resolve("data/run42.old"));

    assertThatThrownBy(() -> preflight.check(manifest(log, input, new RequiredPath("/data/run42", RequiredPath.CWD)),
        false, workDir, "node-b"))
        .isInstanceOfSatisfying(PreflightFailed.class, f -> {
          assertThat(f.reason()).isEqualTo("PreflightPathMissing");
          assertThat(f.getMessage()).isEqualTo("pre-flight on node node-b failed, no restore was attempted: "
              + "missing /data/run42/log.lammps; missing /data/run42/in.lj; missing /data/run42. To fix: put the files "
              + "back at the same paths, or restore on a node that has them (spec.placement)");
        });
  }

  @Test
  void aChangedFileIsNamedWithWhatChanged() throws Exception {
    RequiredPath input = recorded("/data/in.dat", RequiredPath.FILE, "12345");
    Files.writeString(hostRoot.resolve("data/in.dat"), "123");

    assertThatThrownBy(() -> preflight.check(manifest(input), false, workDir, "node-b"))
        .isInstanceOfSatisfying(PreflightFailed.class, f -> {
          assertThat(f.reason()).isEqualTo("PreflightPathChanged");
          assertThat(f.getMessage()).contains("/data/in.dat has 3 bytes, 5 at the checkpoint");
        });
  }

  /** A file that travels in the archive is put back before CRIU runs: not there yet is no failure. */
  @Test
  void aFileThatTravelsNeedNotBeThere() throws Exception {
    RequiredPath segment = new RequiredPath("/dev/shm/vader_segment.0", RequiredPath.MAPPED);
    segment.size = 4096L;
    segment.sha256 = "0".repeat(64);
    segment.travelsAs = "travelling/0";
    preflight.check(manifest(segment), false, workDir, "node-b");

    segment.travelsAs = null;
    assertThatThrownBy(() -> preflight.check(manifest(segment), false, workDir, "node-b"))
        .hasMessageContaining("missing /dev/shm/vader_segment.0");
  }

  @Test
  void aDoctoredManifestCannotMakeItLookOutsideTheNodesRoot() throws Exception {
    Path outside = Files.writeString(hostRoot.resolveSibling(hostRoot.getFileName() + "-outside"), "secret");
    RequiredPath escape = new RequiredPath("/../" + outside.getFileName(), RequiredPath.FILE);
    escape.size = 1L;
    preflight.check(manifest(escape), false, workDir, "node-b");
    Files.delete(outside);
  }

  @Test
  void listsTenPathsAndCountsTheRest() {
    List<RequiredPath> paths = new ArrayList<>();
    for (int i = 0; i < 25; i++) {
      paths.add(new RequiredPath("/data/part" + i, RequiredPath.FILE));
    }
    assertThatThrownBy(() -> preflight.check(manifest(paths.toArray(RequiredPath[]::new)), false, workDir, "node-b"))
        .hasMessageContaining("missing /data/part9; and 15 more paths. To fix");
  }
}
