package dev.stasis.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * An OCI image layout on disk ({@code oci-layout}, {@code index.json}, {@code blobs/sha256/…}), as
 * images/build.sh writes Stasis' own images, and pushing its images to a registry. Every blob is
 * checked against its digest on the way: a damaged file in the layout never becomes an image.
 */
public final class ImageLayout {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String REF_NAME = "org.opencontainers.image.ref.name";

  /** One image the index names: {@code name:tag} and its manifest's digest (sha256:…). */
  public record Image(String name, String tag, String digest) {}

  private final Path dir;

  private ImageLayout(Path dir) {
    this.dir = dir;
  }

  public static ImageLayout at(Path dir) {
    return new ImageLayout(dir);
  }

  /** The images index.json names, in its order. */
  public List<Image> images() throws IOException {
    List<Image> images = new ArrayList<>();
    for (JsonNode entry : JSON.readTree(dir.resolve("index.json").toFile()).path("manifests")) {
      String ref = entry.path("annotations").path(REF_NAME).asText("");
      int colon = ref.lastIndexOf(':');
      if (colon <= 0 || !entry.path("mediaType").asText().equals(RegistryClient.OCI_MANIFEST)) {
        throw new IOException(dir + "/index.json names an entry without a name:tag or not an image manifest: " + entry);
      }
      images.add(new Image(ref.substring(0, colon), ref.substring(colon + 1), entry.path("digest").asText()));
    }
    return images;
  }

  /**
   * Pushes an image's config and layers, then its manifest under the image's tag.
   *
   * @return the digest the registry now serves the image under (the layout's own)
   */
  public String push(Image image, RegistryClient registry)
      throws IOException, RegistryException, RegistryClient.BlobMismatchException {
    byte[] manifest = Files.readAllBytes(blob(image.digest()));
    if (!("sha256:" + RegistryClient.sha256(manifest)).equals(image.digest())) {
      throw new IOException("the manifest of " + image.name() + " in " + dir + " does not match its digest " + image.digest());
    }
    JsonNode parsed = JSON.readTree(manifest);
    List<JsonNode> blobs = new ArrayList<>();
    blobs.add(parsed.path("config"));
    parsed.path("layers").forEach(blobs::add);
    for (JsonNode blob : blobs) {
      String digest = blob.path("digest").asText();
      try (InputStream content = Files.newInputStream(blob(digest))) {
        registry.pushBlob(digest.substring("sha256:".length()), blob.path("size").asLong(), content);
      }
    }
    String pushed = registry.putManifest(image.tag(), manifest);
    if (!pushed.equals(image.digest())) {
      throw new IllegalStateException("pushed manifest " + pushed + " is not " + image.digest());
    }
    return pushed;
  }

  private Path blob(String digest) throws IOException {
    if (!digest.matches("sha256:[0-9a-f]{64}")) {
      throw new IOException("not a sha256 digest in " + dir + ": " + digest);
    }
    return dir.resolve("blobs/sha256").resolve(digest.substring("sha256:".length()));
  }
}
