package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class DumpOptionsTest {
  private static DumpOptions options(boolean endTree, boolean tcp, List<String> mounts) {
    return new DumpOptions(42, Path.of("/w/images"), Path.of("/w"), endTree, endTree, new TreeOptions(tcp, true, false, mounts),
        Duration.ofSeconds(5));
  }

  /** CRIU ends a tree (its default) only through the post-dump hook, which waits for the agent's word. */
  @Test
  void criuEndsATreeOnlyWhenTheHookLetsIt() {
    assertThat(options(false, false, List.of()).arguments()).contains("--leave-running")
        .doesNotContain("--leave-stopped", "--action-script");
    assertThat(options(true, false, List.of()).arguments()).containsSubsequence("--action-script", "/w/post-dump-hook.sh")
        .doesNotContain("--leave-running", "--leave-stopped");
    assertThatThrownBy(() -> new DumpOptions(42, Path.of("/w/images"), Path.of("/w"), true, false, TreeOptions.PLAIN,
        Duration.ofSeconds(5))).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void tcpConnectionsUseTheNftablesNetworkLock() {
    assertThat(options(false, true, List.of()).arguments())
        .containsSubsequence("--tcp-established", "--network-lock", "nftables");
  }

  @Test
  void externalMountsGetKeysThatRestoreMapsBack() {
    var dump = options(false, false, List.of("/data", "/cvmfs")).arguments();
    assertThat(dump).containsSubsequence("--external", "mnt[/data]:stasis-ext0", "--external", "mnt[/cvmfs]:stasis-ext1");
    var restore = new RestoreOptions(Path.of("/i"), Path.of("/w"), new TreeOptions(false, false, false, List.of("/data")),
        Duration.ofSeconds(5)).arguments();
    assertThat(restore).containsSubsequence("--external", "mnt[stasis-ext0]:/data");
    assertThat(restore).doesNotContain("--restore-detached", "-d");
  }

  /** A tree is restored with what it was dumped with: connections, locks, terminal, each as CRIU spells it. */
  @Test
  void aTreeIsRestoredWithTheFlagsItWasDumpedWith() {
    var tree = new TreeOptions(true, true, true, List.of());
    var dump = new DumpOptions(42, Path.of("/w/images"), Path.of("/w"), false, false, tree, Duration.ofSeconds(5)).arguments();
    var restore = new RestoreOptions(Path.of("/i"), Path.of("/w"), tree, Duration.ofSeconds(5)).arguments();
    for (var args : List.of(dump, restore)) {
      assertThat(args).containsSubsequence("--tcp-established", "--network-lock", "nftables")
          .contains("--file-locks", "--shell-job");
    }
    assertThat(new RestoreOptions(Path.of("/i"), Path.of("/w"), TreeOptions.PLAIN, Duration.ofSeconds(5)).arguments())
        .doesNotContain("--tcp-established", "--file-locks", "--shell-job", "--external");
  }

  @Test
  void namesTheTreeAndTheFolders() {
    assertThat(options(false, false, List.of()).arguments())
        .containsSubsequence("dump", "--tree", "42", "--images-dir", "/w/images", "--work-dir", "/w")
        .contains("--file-locks");
  }
}
