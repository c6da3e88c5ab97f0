package dev.stasis.archive;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ManifestTest {

  @Test
  void roundTripsEveryField() throws ManifestException {
    Manifest manifest = processCheckpointManifest();

    Manifest read = Manifest.fromJson(manifest.toJson());

    assertThat(read).usingRecursiveComparison().isEqualTo(manifest);
  }

  @Test
  void writesTheDocumentedShape() {
    String json = new String(processCheckpointManifest().toJson(), StandardCharsets.UTF_8);

    assertThat(json)
        .contains("\"format\" : \"stasis.dev/manifest/v1\"")
        .contains("\"codec\" : \"zstd\"")
        .contains("\"encryption\" : \"none\"")
        .contains("\"pid\" : 4242")
        .doesNotContain("podName")
        .doesNotContain("null");
  }

  @Test
  void ignoresFieldsANewerAgentAdded() throws ManifestException {
    String json = minimalJson().replace("\"source\": {", "\"futureField\": [1, 2], \"source\": {\"futureSourceField\": true, ");

    Manifest read = Manifest.fromJson(bytes(json));

    assertThat(read.archive.sha256).isEqualTo("ab".repeat(32));
  }

  @Test
  void refusesInvalidJson() {
    assertThatThrownBy(() -> Manifest.fromJson(bytes("{\"format\": ")))
        .isInstanceOf(ManifestException.class)
        .hasMessageStartingWith("manifest is not valid JSON: ");
    assertThatThrownBy(() -> Manifest.fromJson(bytes("[1, 2]")))
        .isInstanceOf(ManifestException.class)
        .hasMessage("manifest is not a JSON object");
  }

  @Test
  void refusesFieldsOfTheWrongType() {
    assertThatThrownBy(() -> Manifest.fromJson(bytes(minimalJson().replace("\"storedBytes\": 1234", "\"storedBytes\": \"lots\""))))
        .isInstanceOf(ManifestException.class)
        .hasMessageStartingWith("manifest does not match format stasis.dev/manifest/v1: ");
    assertThatThrownBy(() -> Manifest.fromJson(bytes(minimalJson().replace("\"zstd\"", "\"lz4\""))))
        .isInstanceOf(ManifestException.class)
        .hasMessageContaining("lz4");
  }

  @Test
  void refusesAManifestWithoutFormat() {
    assertThatThrownBy(() -> Manifest.fromJson(bytes(minimalJson().replace("\"format\": \"stasis.dev/manifest/v1\",", ""))))
        .isInstanceOf(ManifestException.class)
        .hasMessage("manifest is missing required field format (expected stasis.dev/manifest/v1)");
  }

  @Test
  void refusesANewerFormatAskingForAnAgentUpgrade() {
    assertThatThrownBy(() -> Manifest.fromJson(bytes(minimalJson().replace("manifest/v1", "manifest/v9"))))
        .isInstanceOf(ManifestException.class)
        .hasMessage("manifest format stasis.dev/manifest/v9 is newer than this agent understands"
            + " (stasis.dev/manifest/v2); upgrade the agent");
  }

  @Test
  void readsADeduplicatedCheckpointsChunksAndRefusesThemWhereTheFormatHasNone() throws Exception {
    String chunks = """
        "chunks": {"indexKey": "ns/ckpt-uid/chunks.idx", "indexSha256": "%s", "indexBytes": 77, "codec": "zstd",
                   "encryption": "none", "keyId": "chunks-1", "imagesBytes": 1048576},
        """.formatted("cd".repeat(32));
    Manifest chunked = Manifest.fromJson(bytes(minimalJson().replace("manifest/v1\",", "manifest/v2\"," + chunks)));
    assertThat(chunked.isChunked()).isTrue();
    assertThat(chunked.chunks.indexKey).isEqualTo("ns/ckpt-uid/chunks.idx");
    assertThat(chunked.chunks.imagesBytes).isEqualTo(1_048_576L);
    assertThat(Manifest.fromJson(chunked.toJson()).chunks.indexSha256).isEqualTo("cd".repeat(32));

    assertThatThrownBy(() -> Manifest.fromJson(bytes(minimalJson().replace("\"format\": \"stasis.dev/manifest/v1\",",
        "\"format\": \"stasis.dev/manifest/v1\"," + chunks))))
        .isInstanceOf(ManifestException.class)
        .hasMessageContaining("has no chunks, but this one lists some");
    assertMissing(minimalJson().replace("manifest/v1", "manifest/v2"), "chunks");
    assertMissing(minimalJson().replace("manifest/v1\",", "manifest/v2\"," + chunks.replace("\"indexBytes\": 77, ", "")),
        "chunks.indexBytes");
    assertMissing(minimalJson().replace("manifest/v1\",", "manifest/v2\"," + chunks.replace(", \"imagesBytes\": 1048576", "")),
        "chunks.imagesBytes");
  }

  @Test
  void chunkedSetsTheFormatOlderAgentsRefuse() throws Exception {
    Manifest manifest = processCheckpointManifest();
    assertThat(Manifest.fromJson(manifest.toJson()).format).isEqualTo(Manifest.FORMAT);
    Manifest.Chunks chunks = new Manifest.Chunks();
    chunks.indexKey = "sims/lammps-1-uid/chunks.idx";
    chunks.indexSha256 = "ef".repeat(32);
    chunks.indexBytes = 10L;
    chunks.codec = ArchiveCodec.ZSTD;
    chunks.encryption = "none";
    chunks.keyId = "chunks-1";
    chunks.imagesBytes = 0L;
    manifest.chunked(chunks);
    assertThat(Manifest.fromJson(manifest.toJson()).format).isEqualTo(Manifest.FORMAT_CHUNKED);
  }

  @Test
  void refusesSomeoneElsesFormat() {
    assertThatThrownBy(() -> Manifest.fromJson(bytes(minimalJson().replace("stasis.dev/manifest/v1", "example.com/v1"))))
        .isInstanceOf(ManifestException.class)
        .hasMessage("manifest format example.com/v1 is not one this agent understands"
            + " (stasis.dev/manifest/v1, stasis.dev/manifest/v2)");
  }

  @Test
  void namesEachMissingRequiredField() {
    assertMissing(minimalJson().replaceFirst("\"source\": \\{[^}]*},", ""), "source");
    assertMissing(minimalJson().replace("\"key\": \"ns/ckpt-uid/archive.tar.zst\",", ""), "archive.key");
    assertMissing(minimalJson().replace("\"sha256\": \"" + "ab".repeat(32) + "\",", ""), "archive.sha256");
    assertMissing(minimalJson().replace(", \"storedBytes\": 1234", ""), "archive.storedBytes");
    assertMissing(minimalJson().replace("\"codec\": \"zstd\",", ""), "archive.codec");
    assertThatThrownBy(() -> Manifest.fromJson(bytes("{\"format\": \"stasis.dev/manifest/v1\"}")))
        .isInstanceOf(ManifestException.class)
        .hasMessage("manifest is missing required fields source, archive");
  }

  @Test
  void recordsTheKeyAnEncryptedArchiveNeeds() throws ManifestException {
    Manifest manifest = processCheckpointManifest();
    manifest.archive.encryption = Manifest.Encryption.with(BoundKey.of(new ArchiveKey("2026-11", new byte[32]),
        ArchiveIdentity.ofProcess("jobs", "uid")), "cd".repeat(32), 999);

    String json = new String(manifest.toJson(), StandardCharsets.UTF_8);
    Manifest read = Manifest.fromJson(manifest.toJson());

    assertThat(json).containsIgnoringWhitespaces("\"encryption\" : {\"algorithm\" : \"AES-256-GCM-STREAM\","
        + " \"keyId\" : \"2026-11\", \"plaintextSha256\" : \"" + "cd".repeat(32) + "\", \"plaintextBytes\" : 999}");
    assertThat(read).usingRecursiveComparison().isEqualTo(manifest);
    assertThat(Manifest.fromJson(bytes(minimalJson())).archive.encryption.isEncrypted())
        .as("manifests from before encryption existed").isFalse();
  }

  @Test
  void refusesEncryptionItCannotUndo() {
    String encrypted = minimalJson().replace("\"codec\": \"zstd\",", "\"codec\": \"zstd\", \"encryption\": %s,");
    assertThatThrownBy(() -> Manifest.fromJson(bytes(encrypted.formatted("{\"algorithm\": \"ROT13\", \"keyId\": \"k\"}"))))
        .isInstanceOf(ManifestException.class)
        .hasMessage("the archive is encrypted with ROT13, which this agent does not know (it knows none and"
            + " AES-256-GCM-STREAM); upgrade the agent");
    assertMissing(encrypted.formatted("{\"algorithm\": \"AES-256-GCM-STREAM\"}"), "archive.encryption.keyId");
    assertThatThrownBy(() -> Manifest.fromJson(bytes(encrypted.formatted("42"))))
        .isInstanceOf(ManifestException.class)
        .hasMessageContaining("archive.encryption must be \"none\" or an object {algorithm, keyId}");
  }

  private static void assertMissing(String json, String field) {
    assertThatThrownBy(() -> Manifest.fromJson(bytes(json)))
        .isInstanceOf(ManifestException.class)
        .hasMessage("manifest is missing required field " + field);
  }

  /** The smallest manifest a restore accepts; tests remove one piece at a time. */
  private static String minimalJson() {
    return """
        {"format": "stasis.dev/manifest/v1",
         "source": {"namespace": "ns", "checkpointName": "ckpt", "checkpointUid": "uid"},
         "archive": {"key": "ns/ckpt-uid/archive.tar.zst", "codec": "zstd",
                     "sha256": "%s", "storedBytes": 1234}}
        """.formatted("ab".repeat(32));
  }

  private static Manifest processCheckpointManifest() {
    Manifest manifest = new Manifest();
    manifest.createdAt = "2025-11-24T18:31:00Z";
    manifest.source = new Manifest.Source();
    manifest.source.namespace = "sims";
    manifest.source.checkpointName = "lammps-1";
    manifest.source.checkpointUid = "0b6f3c1e-6f1a-4c55-9a56-1f0e2d3c4b5a";
    manifest.source.node = "node-a";
    manifest.source.pid = 4242;
    manifest.nodeProfile = Map.of("arch", "amd64", "cpu", Map.of("vendor", "GenuineIntel", "flags", List.of("avx2", "sse4_2")));
    manifest.criu = new Manifest.Criu();
    manifest.criu.version = "4.2.1";
    manifest.criu.options = List.of("--tcp-established", "--network-lock", "nftables");
    var libc = new Manifest.RequiredPath("/usr/lib/x86_64-linux-gnu/libc.so.6", Manifest.RequiredPath.MAPPED);
    libc.size = 1_922_136L;
    libc.buildId = "79005c16293efa45b441fed45f4f29b138557e9e";
    var log = new Manifest.RequiredPath("/data/run42/log.lammps", Manifest.RequiredPath.FILE);
    var data = new Manifest.RequiredPath("/data", Manifest.RequiredPath.MOUNT);
    data.fsType = "nfs4";
    data.source = "fileserver:/export/data";
    manifest.paths = List.of(libc, log, data);
    manifest.tcpEstablished = true;
    manifest.tcpConnections = List.of("127.0.0.1:40000 -> 127.0.0.1:5000");
    manifest.cpuinfo = "GUNWVBNAQGE=";
    manifest.archive = new Manifest.Archive();
    manifest.archive.key = "sims/lammps-1-0b6f3c1e-6f1a-4c55-9a56-1f0e2d3c4b5a/archive.tar.zst";
    manifest.archive.codec = ArchiveCodec.ZSTD;
    manifest.archive.sizeBytes = 10_000L;
    manifest.archive.storedBytes = 4_000L;
    manifest.archive.sha256 = "cd".repeat(32);
    return manifest;
  }

  private static byte[] bytes(String json) {
    return json.getBytes(StandardCharsets.UTF_8);
  }
}
