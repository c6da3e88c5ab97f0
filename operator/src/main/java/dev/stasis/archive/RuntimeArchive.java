package dev.stasis.archive;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * What a container runtime's checkpoint archive (the kubelet's tar, as CRI-O and containerd write
 * it) says about itself: config.dump's image and OCI runtime, and the CRIU version at the top of
 * CRIU's dump.log (checkpoint/dump.log with containerd, dump.log with CRI-O). Only those small
 * entries are read; the memory pages are skipped over (a seek in a file).
 *
 * @param rootfsImage the image as the pod named it
 * @param rootfsImageName the image's name as the runtime pulled it
 * @param rootfsImageRef the image by digest (containerd) or image ID (CRI-O)
 * @param ociRuntime config.dump's runtime
 * @param criuVersion e.g. 4.2.1; null when no dump.log says it
 */
public record RuntimeArchive(String rootfsImage, String rootfsImageName, String rootfsImageRef, String ociRuntime,
    String criuVersion) {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern CRIU_VERSION = Pattern.compile("Version: (\\d+\\.\\d+(?:\\.\\d+)?)");
  private static final int SMALL = 1 << 20;
  private static final int LOG_HEAD = 4096;

  public static RuntimeArchive read(Path tar) throws IOException {
    JsonNode config = null;
    String criu = null;
    try (InputStream file = Files.newInputStream(tar);
        TarArchiveInputStream entries = new TarArchiveInputStream(new BufferedInputStream(file, 64 * 1024))) {
      TarArchiveEntry entry;
      while ((entry = entries.getNextEntry()) != null && (config == null || criu == null)) {
        String name = entry.getName().replaceFirst("^\\./", "");
        if (name.equals("config.dump") && entry.getSize() < SMALL) {
          config = JSON.readTree(entries.readNBytes((int) entry.getSize()));
        } else if ((name.equals("dump.log") || name.equals("checkpoint/dump.log")) && criu == null) {
          Matcher m = CRIU_VERSION.matcher(new String(entries.readNBytes(LOG_HEAD), StandardCharsets.UTF_8));
          criu = m.find() ? m.group(1) : null;
        }
      }
    }
    return new RuntimeArchive(text(config, "rootfsImage"), text(config, "rootfsImageName"),
        text(config, "rootfsImageRef"), text(config, "runtime"), criu);
  }

  private static String text(JsonNode config, String field) {
    return config == null || !config.hasNonNull(field) || config.get(field).asText().isEmpty() ? null
        : config.get(field).asText();
  }
}
