package dev.stasis.agent.process;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The pod a process belongs to, read from its /proc/PID/cgroup as each kubelet cgroup driver lays it out. */
class ProcessTargetPolicyTest {
  static final String UID = "1a2b3c4d-0000-4111-8222-0123456789ab";

  @Test
  void systemdDriverOnCgroupV2() {
    assertThat(ProcessTargetPolicy.podUids("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"
        + UID.replace('-', '_') + ".slice/cri-containerd-0f1e2d.scope\n")).containsExactly(UID);
  }

  @Test
  void cgroupfsDriverOnCgroupV1() {
    assertThat(ProcessTargetPolicy.podUids("12:memory:/kubepods/burstable/pod" + UID + "/0f1e2d\n"
        + "4:pids:/kubepods/burstable/pod" + UID + "/0f1e2d\n1:name=systemd:/kubepods/burstable/pod" + UID
        + "/0f1e2d\n")).containsExactly(UID);
    assertThat(ProcessTargetPolicy.podUids("3:cpu:/kubepods/pod" + UID + "/0f1e2d\n")).as("Guaranteed QoS")
        .containsExactly(UID);
  }

  /** The agent in its own cgroup namespace sees the host's pod cgroups relative to its own. */
  @Test
  void seenFromTheAgentsOwnCgroupNamespace() {
    assertThat(ProcessTargetPolicy.podUids("0::/../../kubepods-besteffort-pod" + UID.replace('-', '_')
        + ".slice/cri-containerd-0f1e2d.scope\n")).containsExactly(UID);
  }

  @Test
  void hostProcessesBelongToNoPod() {
    assertThat(ProcessTargetPolicy.podUids("0::/system.slice/kubelet.service\n")).isEmpty();
    assertThat(ProcessTargetPolicy.podUids("0::/system.slice/containerd.service\n")).isEmpty();
    assertThat(ProcessTargetPolicy.podUids("0::/\n4:memory:/process_api/78606b1e\n")).isEmpty();
    assertThat(ProcessTargetPolicy.podUids("0::/user.slice/pod" + UID + "/x\n")).as("not under kubepods").isEmpty();
  }
}
