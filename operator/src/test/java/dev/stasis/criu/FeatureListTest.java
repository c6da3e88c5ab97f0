package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class FeatureListTest {
  /** As CRIU 4.2.1 prints it. */
  static final String HELP = """
      Check options:
        Without options, "criu check" checks availability of absolutely required
        kernel features, critical for performing dump and restore.
        --extra               add check for extra kernel features
        --all                 same as --extra --experimental
        --feature FEAT        only check a particular feature, one of:
                                  mnt_id, mem_dirty_track, aio_remap, timerfd, tun,\s
                                  tun_ns, userns, fdinfo_lock, seccomp_suspend,\s
                                  overlayfs_maps, breakpoints,\s
                                  pagemap_scan_guard_pages

      * Miscellaneous:
        -h|--help             show this text
      """;

  @Test
  void readsTheFeatureNamesFromCriusHelp() {
    assertThat(FeatureList.parse(HELP)).containsExactly("mnt_id", "mem_dirty_track", "aio_remap", "timerfd", "tun",
        "tun_ns", "userns", "fdinfo_lock", "seccomp_suspend", "overlayfs_maps", "breakpoints", "pagemap_scan_guard_pages");
  }

  @Test
  void aCriuWithoutTheListHasNoFeatures() {
    assertThat(FeatureList.parse("Version: 3.17.1\n")).isEmpty();
  }
}
