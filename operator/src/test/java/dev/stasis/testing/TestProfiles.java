package dev.stasis.testing;

import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import java.util.List;
import java.util.Map;

/** NodeProfiles as an agent publishes them, for tests of the operator's placement decisions. */
public final class TestProfiles {
  private TestProfiles() {}

  /** An x86_64 node with CRIU 4.2.1, these labels and these CPU flags. */
  public static NodeProfile node(String name, Map<String, String> labels, String... flags) {
    NodeProfile p = new NodeProfile();
    p.setMetadata(new ObjectMetaBuilder().withName(name).withLabels(labels).build());
    p.setSpec(new NodeProfileSpec());
    p.getSpec().arch = "x86_64";
    p.getSpec().cpu = new NodeProfileSpec.CpuInfo();
    p.getSpec().cpu.flags = List.of(flags);
    p.getSpec().criu = new NodeProfileSpec.CriuInfo();
    p.getSpec().criu.version = "4.2.1";
    return p;
  }
}
