package dev.stasis.archive;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What a container runtime's checkpoint archive (the kubelet's tar, as CRI-O and containerd write
 * it), once unpacked, says about its container: from {@code config.dump} its id, name, image and
 * OCI runtime; from {@code spec.dump} (the OCI runtime spec) the command, working folder and
 * mounts. The environment is never read: it may hold secrets. CRIU's images are in
 * {@link #IMAGES_FOLDER}.
 *
 * @param rootfsDiffBytes the container's changes to its image's files (rootfs-diff.tar); 0 when none
 */
public record ContainerDump(String id, String name, String image, String imageRef, String runtime, String created,
    List<String> command, String cwd, List<Mount> mounts, long rootfsDiffBytes) {
  public static final String IMAGES_FOLDER = "checkpoint";
  private static final ObjectMapper JSON = new ObjectMapper();
  // config.dump and spec.dump are a few KiB; a larger one is not what a runtime wrote.
  private static final long MAX_DUMP_BYTES = 4 << 20;

  public record Mount(String destination, String type, String source) {}

  /** Reads the unpacked archive in {@code dir}; fails when it is no runtime's checkpoint archive. */
  public static ContainerDump read(Path dir) throws IOException {
    JsonNode config = json(dir.resolve("config.dump"));
    JsonNode spec = json(dir.resolve("spec.dump"));
    List<String> command = new ArrayList<>();
    spec.path("process").path("args").forEach(a -> command.add(a.asText()));
    List<Mount> mounts = new ArrayList<>();
    spec.path("mounts").forEach(m -> mounts.add(new Mount(text(m, "destination"), text(m, "type"), text(m, "source"))));
    Path diff = dir.resolve("rootfs-diff.tar");
    return new ContainerDump(text(config, "id"), text(config, "name"), text(config, "rootfsImageName") != null
        ? text(config, "rootfsImageName") : text(config, "rootfsImage"), text(config, "rootfsImageRef"),
        text(config, "runtime"), text(config, "createdTime"), command, text(spec.path("process"), "cwd"), mounts,
        Files.isRegularFile(diff) ? Files.size(diff) : 0);
  }

  private static JsonNode json(Path file) throws IOException {
    if (!Files.isRegularFile(file) || Files.size(file) > MAX_DUMP_BYTES) {
      throw new IOException("the archive holds no " + file.getFileName() + " (of at most " + MAX_DUMP_BYTES
          + " bytes): it is not a container runtime's checkpoint archive");
    }
    return JSON.readTree(file.toFile());
  }

  private static String text(JsonNode node, String field) {
    return node.hasNonNull(field) && !node.get(field).asText().isEmpty() ? node.get(field).asText() : null;
  }
}
