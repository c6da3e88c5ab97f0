package dev.stasis.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stasis.image.Registry;
import dev.stasis.image.RegistryClient;
import dev.stasis.tls.TlsTrust;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * Container images of the test workloads (src/test/workloads): one layer holding the workload
 * linked statically, its entrypoint the workload with its arguments, pushed with Stasis' own
 * registry client. A node must pull a checkpointed container's image again when it restores it,
 * so pods that tests checkpoint run images from a registry, not imported ones.
 */
public final class WorkloadImages {
  private static final ObjectMapper JSON = new ObjectMapper();

  private WorkloadImages() {}

  /**
   * Pushes the image of {@code workload} to a plain-HTTP registry without credentials.
   *
   * @return the image's reference, {@code host/repository:tag}
   */
  public static String push(String registryHost, String repository, String tag, String workload, String... args)
      throws Exception {
    byte[] layer = layer(Workloads.staticBinary(workload));
    String layerSha = RegistryClient.sha256(layer);
    ObjectNode config = JSON.createObjectNode().put("architecture", "amd64").put("os", "linux");
    var entrypoint = config.putObject("config").putArray("Entrypoint").add("/" + workload);
    List.of(args).forEach(entrypoint::add);
    config.putObject("rootfs").put("type", "layers").putArray("diff_ids").add("sha256:" + layerSha);
    byte[] configBytes = JSON.writeValueAsBytes(config);

    ObjectNode manifest = JSON.createObjectNode().put("schemaVersion", 2).put("mediaType", RegistryClient.OCI_MANIFEST);
    manifest.putObject("config").put("mediaType", "application/vnd.oci.image.config.v1+json")
        .put("digest", "sha256:" + RegistryClient.sha256(configBytes)).put("size", configBytes.length);
    manifest.putArray("layers").addObject().put("mediaType", "application/vnd.oci.image.layer.v1.tar")
        .put("digest", "sha256:" + layerSha).put("size", layer.length);

    RegistryClient registry = RegistryClient.open(
        Registry.of("http://" + registryHost, null, null, TlsTrust.system()), repository);
    registry.pushBlob(layerSha, layer.length, new ByteArrayInputStream(layer));
    registry.pushBlob(configBytes);
    registry.putManifest(tag, JSON.writeValueAsBytes(manifest));
    return registryHost + "/" + repository + ":" + tag;
  }

  private static byte[] layer(Path binary) throws IOException {
    var bytes = new ByteArrayOutputStream();
    try (var tar = new TarArchiveOutputStream(bytes)) {
      TarArchiveEntry entry = new TarArchiveEntry(binary.getFileName().toString());
      entry.setMode(0100755);
      entry.setSize(Files.size(binary));
      entry.setModTime(0);
      tar.putArchiveEntry(entry);
      Files.copy(binary, tar);
      tar.closeArchiveEntry();
    }
    return bytes.toByteArray();
  }
}
