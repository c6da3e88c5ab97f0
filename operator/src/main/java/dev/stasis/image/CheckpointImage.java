package dev.stasis.image;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import java.util.TreeMap;

/**
 * A checkpoint OCI image as CRI-O and containerd restore from: one layer holding the container's
 * checkpoint archive (config.dump, spec.dump, checkpoint/ …) at its root, and the annotations by
 * which they recognize a checkpoint image (containerd reads the engine-neutral one). The stored archive is the layer as it is, compressed or not, so
 * pushing it needs neither a second copy on disk nor a second compression.
 */
public final class CheckpointImage {
  /** CRI-O restores a container from an image that carries this annotation (CRI-O 1.25+). */
  public static final String CRIO_CHECKPOINT_NAME = "io.kubernetes.cri-o.annotations.checkpoint.name";
  /** The engine-neutral name checkpointctl and Podman use. */
  public static final String CRIU_CONTAINER_NAME = "org.criu.checkpoint.container.name";
  public static final String CRIU_POD_NAME = "org.criu.checkpoint.pod.name";
  public static final String CRIU_POD_NAMESPACE = "org.criu.checkpoint.pod.namespace";
  public static final String LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
  public static final String LAYER_TAR_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
  private static final String CONFIG = "application/vnd.oci.image.config.v1+json";
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The archive as a layer.
   *
   * @param sha256 of the bytes as stored (the layer's digest)
   * @param tarSha256 of the tar inside (the layer's diff ID; the same as sha256 when not compressed)
   */
  public record Layer(String sha256, long size, String tarSha256, boolean zstd) {}

  private CheckpointImage() {}

  /**
   * Pushes the image of one checkpointed container and tags it.
   *
   * @param arch the machine architecture as the kernel names it (x86_64, aarch64)
   * @return the manifest's digest (sha256:…)
   */
  public static String push(RegistryClient registry, String tag, String container, String pod, String namespace,
      String arch, Layer layer, InputStream archive)
      throws RegistryException, RegistryClient.BlobMismatchException, IOException {
    registry.pushBlob(layer.sha256(), layer.size(), archive);
    byte[] config = config(arch, layer);
    registry.pushBlob(config);
    return registry.putManifest(tag, manifest(config, layer, container, pod, namespace));
  }

  /** Deletes the image a reference (host/repository@sha256:…) names; false if it was gone already. */
  public static boolean delete(Registry registry, String reference) throws RegistryException {
    int slash = reference.indexOf('/');
    int at = reference.indexOf('@');
    if (slash < 0 || at < slash) {
      throw new IllegalArgumentException("not an image reference by digest: " + reference);
    }
    return RegistryClient.open(registry, reference.substring(slash + 1, at)).deleteManifest(reference.substring(at + 1));
  }

  static byte[] config(String arch, Layer layer) throws IOException {
    ObjectNode config = JSON.createObjectNode();
    config.put("architecture", goArch(arch));
    config.put("os", "linux");
    config.putObject("config");
    ObjectNode rootfs = config.putObject("rootfs");
    rootfs.put("type", "layers");
    rootfs.putArray("diff_ids").add("sha256:" + layer.tarSha256());
    return JSON.writeValueAsBytes(config);
  }

  static byte[] manifest(byte[] config, Layer layer, String container, String pod, String namespace) throws IOException {
    ObjectNode manifest = JSON.createObjectNode();
    manifest.put("schemaVersion", 2);
    manifest.put("mediaType", RegistryClient.OCI_MANIFEST);
    manifest.putObject("config").put("mediaType", CONFIG).put("digest", "sha256:" + RegistryClient.sha256(config))
        .put("size", config.length);
    manifest.putArray("layers").addObject().put("mediaType", layer.zstd() ? LAYER_TAR_ZSTD : LAYER_TAR)
        .put("digest", "sha256:" + layer.sha256()).put("size", layer.size());
    Map<String, String> annotations = new TreeMap<>(Map.of(
        CRIO_CHECKPOINT_NAME, container,
        CRIU_CONTAINER_NAME, container,
        CRIU_POD_NAME, pod,
        CRIU_POD_NAMESPACE, namespace));
    manifest.set("annotations", JSON.valueToTree(annotations));
    return JSON.writeValueAsBytes(manifest);
  }

  /** OCI names architectures as Go does. */
  private static String goArch(String arch) {
    return switch (arch == null ? "" : arch) {
      case "x86_64", "amd64" -> "amd64";
      case "aarch64", "arm64" -> "arm64";
      case "ppc64le" -> "ppc64le";
      case "s390x" -> "s390x";
      default -> arch == null || arch.isEmpty() ? "amd64" : arch;
    };
  }
}
