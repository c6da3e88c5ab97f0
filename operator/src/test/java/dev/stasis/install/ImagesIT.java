package dev.stasis.install;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stasis.image.ImageLayout;
import dev.stasis.image.Registry;
import dev.stasis.image.RegistryClient;
import dev.stasis.testing.ImageJavaOptions;
import dev.stasis.testing.RegistryServer;
import dev.stasis.testing.TestCa;
import dev.stasis.testing.TestControlPlane;
import dev.stasis.tls.TlsTrust;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * images/build.sh, the one recipe of Stasis' images: the same inputs give the same images, a second
 * build reuses every layer, and the images pushed are the images built, each run as it should be.
 * (That they run on a real node: HelmInstallOnNodeIT.)
 */
class ImagesIT {
  static final Path REPO = TestControlPlane.repoRoot();
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  @BeforeAll
  static void build() throws Exception {
    build(Map.of());
  }

  @Test
  void theSameInputsGiveTheSameImagesAndASecondBuildReusesEveryLayer() throws Exception {
    Map<String, String> images = digests(REPO.resolve(".stasis/images"));
    assertThat(images).containsOnlyKeys("stasis-operator:0.1.0", "stasis-agent:0.1.0", "stasis-counter:0.1.0");

    String again = build(Map.of());
    assertThat(again).doesNotContain("building layer");
    assertThat(digests(REPO.resolve(".stasis/images"))).isEqualTo(images);

    // Every layer made anew in an empty store (the Debian package lists are shared).
    String fresh = build(Map.of("STASIS_IMAGES_STORE", dir.resolve("store").toString(),
        "STASIS_IMAGES_LAYOUT", dir.resolve("layout").toString()));
    assertThat(fresh.lines().filter(l -> l.contains("building layer"))).hasSize(6);
    assertThat(digests(dir.resolve("layout"))).isEqualTo(images);
  }

  @Test
  void theImagesPushedAreTheImagesBuiltAndRunAsTheyShould() throws Exception {
    TestCa ca = TestCa.create(dir.resolve("ca"), "registry");
    ImageLayout layout = ImageLayout.at(REPO.resolve(".stasis/images"));
    try (RegistryServer server = RegistryServer.start(dir.resolve("registry"), ca, "builder", "s3cret")) {
      Registry registry = Registry.of(server.url("stasis"), "builder", "s3cret",
          TlsTrust.trusting(Files.readAllBytes(ca.certificate())));
      Map<String, JsonNode> configs = new TreeMap<>();
      for (ImageLayout.Image image : layout.images()) {
        RegistryClient client = RegistryClient.open(registry, registry.repository(image.name()));
        assertThat(layout.push(image, client)).isEqualTo(image.digest());
        byte[] served = client.manifest(image.tag());
        assertThat("sha256:" + sha256(served)).as("%s as the registry serves it", image.name()).isEqualTo(image.digest());
        String config = JSON.readTree(served).at("/config/digest").asText().substring("sha256:".length());
        configs.put(image.name(), JSON.readTree(REPO.resolve(".stasis/images/blobs/sha256").resolve(config).toFile())
            .path("config"));
      }
      // Both JVMs start with the options the benchmark gives its agent too.
      List<String> java = new ArrayList<>(List.of("/opt/java/bin/java"));
      java.addAll(ImageJavaOptions.of(REPO));
      java.addAll(List.of("-jar", "/opt/stasis/stasis.jar"));
      for (String role : List.of("stasis-operator", "stasis-agent")) {
        assertThat(JSON.convertValue(configs.get(role).path("Entrypoint"), String[].class)).as(role)
            .containsExactlyElementsOf(java);
      }
      JsonNode operator = configs.get("stasis-operator");
      assertThat(operator.path("User").asText()).isEqualTo("65532:65532");
      assertThat(operator.path("Cmd").toString()).isEqualTo("[\"operator\"]");
      JsonNode agent = configs.get("stasis-agent");
      assertThat(agent.path("User").asText()).isEqualTo("0:0");
      assertThat(agent.path("Cmd").toString()).isEqualTo("[\"agent\"]");
      assertThat(agent.path("Env").toString()).contains("STASIS_IMAGE_CRIU=/opt/stasis/criu");
      assertThat(configs.get("stasis-counter").path("Entrypoint").toString()).contains("echo");
    }
  }

  @Test
  void noFileInAnyLayerIsSetuidOrSetgid() throws Exception {
    Path blobs = REPO.resolve(".stasis/images/blobs/sha256");
    for (ImageLayout.Image image : ImageLayout.at(REPO.resolve(".stasis/images")).images()) {
      JsonNode manifest = JSON.readTree(blobs.resolve(image.digest().substring("sha256:".length())).toFile());
      for (JsonNode layer : manifest.path("layers")) {
        Path blob = blobs.resolve(layer.path("digest").asText().substring("sha256:".length()));
        try (var tar = new TarArchiveInputStream(new GZIPInputStream(Files.newInputStream(blob)))) {
          for (TarArchiveEntry entry = tar.getNextEntry(); entry != null; entry = tar.getNextEntry()) {
            assertThat(entry.getMode() & 06000).as("%s in %s", entry.getName(), image.name()).isZero();
          }
        }
      }
    }
  }

  private static String build(Map<String, String> env) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(List.of(REPO.resolve("images/build.sh").toString()))
        .directory(REPO.toFile()).redirectErrorStream(true);
    pb.environment().putAll(env);
    Process p = pb.start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(10, TimeUnit.MINUTES)).isTrue();
    assertThat(p.exitValue()).as("images/build.sh:\n%s", output).isZero();
    return output;
  }

  /** name:tag → manifest digest, as the layout's index.json has them. */
  private static Map<String, String> digests(Path layout) throws Exception {
    Map<String, String> digests = new TreeMap<>();
    for (ImageLayout.Image image : ImageLayout.at(layout).images()) {
      digests.put(image.name() + ":" + image.tag(), image.digest());
    }
    return digests;
  }

  private static String sha256(byte[] bytes) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }
}
