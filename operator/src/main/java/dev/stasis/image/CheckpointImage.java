package dev.stasis.image;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stasis.archive.Manifest;
import java.io.IOException;
import java.io.InputStream;
import java.util.Map;
import java.util.TreeMap;

/**
 * A checkpoint OCI image as CRI-O and containerd restore from: one layer holding the container's
 * checkpoint archive (config.dump, spec.dump, checkpoint/ …) at its root, and the annotations by
 * which they recognize a checkpoint image (containerd reads the engine-neutral one, CRI-O its own),
 * with the ones checkpointctl writes about where the checkpoint was taken. The stored archive is
 * the layer as it is, compressed or not, so pushing it needs neither a second copy on disk nor a
 * second compression. Each Restore pushes an image of its own (its UID in an annotation), so that
 * deleting one Restore's image never takes another's.
 */
public final class CheckpointImage {
  /** CRI-O restores a container from an image that carries this annotation (CRI-O 1.25+). */
  public static final String CRIO_CHECKPOINT_NAME = "io.kubernetes.cri-o.annotations.checkpoint.name";
  /** The engine-neutral name checkpointctl and Podman use, and containerd (2.1+) reads. */
  public static final String CRIU_CONTAINER_NAME = "org.criu.checkpoint.container.name";
  public static final String CRIU_POD_NAME = "org.criu.checkpoint.pod.name";
  public static final String CRIU_POD_NAMESPACE = "org.criu.checkpoint.pod.namespace";
  // What checkpointctl's annotations (lib/annotations.go) say about where the checkpoint came from.
  public static final String CRIU_ENGINE_NAME = "org.criu.checkpoint.engine.name";
  public static final String CRIU_ENGINE_VERSION = "org.criu.checkpoint.engine.version";
  public static final String CRIU_RUNTIME_NAME = "org.criu.checkpoint.runtime.name";
  public static final String CRIU_VERSION = "org.criu.checkpoint.criu.version";
  public static final String CRIU_HOST_ARCH = "org.criu.checkpoint.host.arch";
  public static final String CRIU_HOST_KERNEL = "org.criu.checkpoint.host.kernel";
  public static final String CRIU_CGROUP_VERSION = "org.criu.checkpoint.cgroup.version";
  public static final String CRIU_DISTRIBUTION_NAME = "org.criu.checkpoint.distribution.name";
  public static final String CRIU_DISTRIBUTION_VERSION = "org.criu.checkpoint.distribution.version";
  public static final String CRIU_ROOTFS_IMAGE_NAME = "org.criu.checkpoint.rootfsImageName";
  public static final String CRIU_ROOTFS_IMAGE_ID = "org.criu.checkpoint.rootfsImageID";
  /** The Restore the image was pushed for. */
  public static final String RESTORE_UID = "stasis.dev/restore-uid";
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

  /** The tag of the image a Restore pushes for one container: Restores never share one. */
  public static String tag(String container, String restoreUid) {
    return container + "-" + restoreUid;
  }

  /**
   * The annotations of a container's checkpoint image, from its manifest (as its Checkpoint
   * recorded it) and the Restore it is pushed for; fields the manifest lacks are left out.
   */
  public static Map<String, String> annotations(Manifest manifest, String restoreUid) {
    Map<String, String> annotations = new TreeMap<>();
    var source = manifest.source;
    put(annotations, CRIO_CHECKPOINT_NAME, source.containerName);
    put(annotations, CRIU_CONTAINER_NAME, source.containerName);
    put(annotations, CRIU_POD_NAME, source.podName);
    put(annotations, CRIU_POD_NAMESPACE, source.namespace);
    put(annotations, CRIU_ROOTFS_IMAGE_NAME, source.rootfsImageName);
    put(annotations, CRIU_ROOTFS_IMAGE_ID, source.rootfsImageRef);
    if (manifest.runtime != null) {
      put(annotations, CRIU_ENGINE_NAME, manifest.runtime.name);
      put(annotations, CRIU_ENGINE_VERSION, manifest.runtime.version);
      put(annotations, CRIU_RUNTIME_NAME, manifest.runtime.ociRuntime);
      put(annotations, CRIU_VERSION, manifest.runtime.criuVersion);
    }
    Map<String, Object> node = manifest.nodeProfile == null ? Map.of() : manifest.nodeProfile;
    put(annotations, CRIU_HOST_ARCH, node.get("arch") instanceof String a ? goArch(a) : null);
    put(annotations, CRIU_HOST_KERNEL, node.get("kernelRelease"));
    put(annotations, CRIU_CGROUP_VERSION, node.get("cgroupVersion"));
    if (node.get("os") instanceof Map<?, ?> os) {
      put(annotations, CRIU_DISTRIBUTION_NAME, os.get("id"));
      put(annotations, CRIU_DISTRIBUTION_VERSION, os.get("versionId"));
    }
    put(annotations, RESTORE_UID, restoreUid);
    return annotations;
  }

  private static void put(Map<String, String> annotations, String key, Object value) {
    if (value != null && !value.toString().isBlank()) {
      annotations.put(key, value.toString());
    }
  }

  /**
   * Pushes the image of one checkpointed container and tags it.
   *
   * @param arch the machine architecture as the kernel names it (x86_64, aarch64)
   * @return the manifest's digest (sha256:…)
   */
  public static String push(RegistryClient registry, String tag, Map<String, String> annotations, String arch,
      Layer layer, InputStream archive) throws RegistryException, RegistryClient.BlobMismatchException, IOException {
    registry.pushBlob(layer.sha256(), layer.size(), archive);
    byte[] config = config(arch, layer);
    registry.pushBlob(config);
    return registry.putManifest(tag, manifest(config, layer, annotations));
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

  static byte[] manifest(byte[] config, Layer layer, Map<String, String> annotations) throws IOException {
    ObjectNode manifest = JSON.createObjectNode();
    manifest.put("schemaVersion", 2);
    manifest.put("mediaType", RegistryClient.OCI_MANIFEST);
    manifest.putObject("config").put("mediaType", CONFIG).put("digest", "sha256:" + RegistryClient.sha256(config))
        .put("size", config.length);
    manifest.putArray("layers").addObject().put("mediaType", layer.zstd() ? LAYER_TAR_ZSTD : LAYER_TAR)
        .put("digest", "sha256:" + layer.sha256()).put("size", layer.size());
    manifest.set("annotations", JSON.valueToTree(new TreeMap<>(annotations)));
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
