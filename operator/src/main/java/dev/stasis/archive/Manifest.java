package dev.stasis.archive;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonValue;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Describes one stored checkpoint: where it came from, how it was taken and how to verify its
 * archive. It is stored next to the archive and written last, so its presence means the checkpoint
 * is complete. A restore reads it before anything else: it decides which nodes can take the
 * checkpoint and carries the sha256 the archive must match.
 *
 * <p>Unknown fields are ignored so that an older agent can still read manifests that a newer one
 * enriched; a newer {@link #format} is refused, because it may change what existing fields mean.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonIgnoreProperties(ignoreUnknown = true)
public class Manifest {
  public static final String FORMAT = "stasis.dev/manifest/v1";
  /**
   * A deduplicated checkpoint ({@link #chunks}): the memory images are stored as chunks, not in the
   * archive. Its own version, so an agent that knows only v1 refuses it rather than restoring an
   * archive without its memory.
   */
  public static final String FORMAT_CHUNKED = "stasis.dev/manifest/v2";

  private static final int FORMAT_VERSION = 2;
  private static final Pattern STASIS_FORMAT = Pattern.compile("stasis\\.dev/manifest/v(\\d{1,9})");
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  public String format = FORMAT;
  /** When the checkpoint was taken, RFC 3339. */
  public String createdAt;
  public Source source;
  /** The source node's fingerprint (NodeProfile fields), which restores are matched against. */
  public Map<String, Object> nodeProfile;
  public Criu criu;
  /** Pod checkpoints: the container runtime that took it. */
  public Runtime runtime;
  /**
   * Files the checkpointed process depends on; a restore needs them at the same paths, where those
   * that travel with the checkpoint ({@link RequiredPath#travelsAs}) are put back.
   */
  public List<RequiredPath> paths;
  /** Whether CRIU was told to checkpoint established TCP connections (--tcp-established). */
  public Boolean tcpEstablished;
  /** The established TCP connections the tree held ("local -> remote"); they survive only on the source node. */
  public List<String> tcpConnections;
  /** GPU devices the tree had open or mapped; CRIU cannot restore GPU state yet. */
  public List<String> gpuDevices;
  /** The source CPU as {@code criu cpuinfo dump} wrote it (cpuinfo.img, base64), for {@code criu cpuinfo check}. */
  public String cpuinfo;
  public Archive archive;
  /** Deduplicated checkpoints only (format {@link #FORMAT_CHUNKED}): where the memory images are. */
  public Chunks chunks;

  /** What was checkpointed: a pod's container (podName, containerName) or a process (node, pid). */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class Source {
    public String namespace;
    public String checkpointName;
    public String checkpointUid;
    public String node;
    public Integer pid;
    public String podName;
    public String containerName;
    /** Pod checkpoints: the runtime's container ID, e.g. cri-o://3f2a…. */
    public String containerId;
    /** Pod checkpoints: the image the container ran. */
    public String containerImage;
    /** Pod checkpoints: the pod's labels, annotations and spec, from which a restore recreates it. */
    public Map<String, String> podLabels;
    public Map<String, String> podAnnotations;
    public Map<String, Object> podSpec;
    /** Pod checkpoints: the name the kubelet gave the archive, e.g. checkpoint-web_jobs-app-2024-….tar. */
    public String kubeletArchive;
    /**
     * Pod checkpoints: the image the container ran, by digest as the runtime resolved it
     * (config.dump's rootfsImageRef, e.g. registry.example.com/sim@sha256:…); containerd pulls it
     * again by this reference when it restores the container.
     */
    public String rootfsImageRef;
    /** Pod checkpoints: that image by the name it was pulled with (config.dump's rootfsImageName). */
    public String rootfsImageName;
    /** Pod checkpoints: the pod's controller (its owner reference with controller: true), if it had one. */
    public Owner podController;
  }

  /** An owner reference, as the pod carried it. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class Owner {
    public String apiVersion;
    public String kind;
    public String name;
    public String uid;
  }

  /** Pod checkpoints: the container runtime that took the checkpoint, as the checkpoint image's annotations name it. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class Runtime {
    /** The container engine (containerd, cri-o) and its version, as the kubelet reports them. */
    public String name;
    public String version;
    /** The OCI runtime under it, as config.dump names it (io.containerd.runc.v2, runc, crun). */
    public String ociRuntime;
    /** The CRIU the runtime ran, from the first lines of CRIU's dump.log in the archive. */
    public String criuVersion;
  }

  /** The CRIU that wrote the images; a restore needs at least this version. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class Criu {
    public String version;
    public List<String> options;
  }

  /**
   * A path the restored tree needs, as the source saw it. CRIU reopens files by path and checks
   * what it recorded (size unless appended to, ELF build-id), so the restoring node must hold the
   * same files; the pre-flight compares them before CRIU runs.
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class RequiredPath {
    public static final String EXECUTABLE = "executable";
    /** A file mapped into memory: shared libraries, locale archives, mapped data. */
    public static final String MAPPED = "mapped";
    /** A regular file open on a file descriptor. */
    public static final String FILE = "file";
    public static final String DIRECTORY = "directory";
    public static final String CWD = "cwd";
    public static final String ROOT = "root";
    /** The mount point of a filesystem a recorded path lives on. */
    public static final String MOUNT = "mount";

    public String path;
    public String kind;
    /** Bytes; absent where CRIU does not compare sizes (directories, files open for appending). */
    public Long size;
    /** GNU build-id of an ELF file, lowercase hex. */
    public String buildId;
    /** sha256 of a mapped file without a build-id. */
    public String sha256;
    /**
     * True for a file the tree had open or mapped for writing: recorded as CRIU saw it while the
     * tree was frozen and compared only as CRIU compares it (present, kind, size), never by content.
     */
    public Boolean written;
    /**
     * For a file that travels with the checkpoint (a job-private file on tmpfs): its entry in the
     * archive, put back at {@link #path} before CRIU restores unless a file with its sha256 is
     * there. Absent: the file must exist on the restoring node.
     */
    public String travelsAs;
    /** For a file that travels: its permission bits (octal, e.g. "0600") and owner, to put it back with. */
    public String permissions;
    public Integer uid;
    public Integer gid;
    /** For mounts: the filesystem type and source, as mountinfo shows them. */
    public String fsType;
    public String source;

    public RequiredPath() {}

    public RequiredPath(String path, String kind) {
      this.path = path;
      this.kind = kind;
    }
  }

  /** The stored archive object and what its bytes must be. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class Archive {
    /** Object key relative to the storage's prefix. */
    public String key;
    public ArchiveCodec codec;
    public Encryption encryption = Encryption.NONE;
    /** Bytes of the tar stream before compression. */
    public Long sizeBytes;
    /** Bytes of the stored object. */
    public Long storedBytes;
    /** Lowercase hex sha256 of the stored object. */
    public String sha256;
    /** Lowercase hex sha256 of the tar stream before compression (pod checkpoints: the kubelet's archive). */
    public String tarSha256;
  }

  /**
   * The memory images of a deduplicated checkpoint: each {@code pages-<n>.img} is left out of the
   * archive and stored as chunks under the namespace's chunk folder
   * ({@link ArchiveLayout#chunkKey}), which the chunk index lists in order with each image's sha256.
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  @JsonIgnoreProperties(ignoreUnknown = true)
  public static class Chunks {
    /** The chunk index object ({@link ArchiveLayout#chunkIndexKey}), relative to the storage's prefix. */
    public String indexKey;
    /** Lowercase hex sha256 of the chunk index object, which a restore checks before reading it. */
    public String indexSha256;
    public Long indexBytes;
    /** How each chunk is compressed before it is stored (and encrypted). */
    public ArchiveCodec codec;
    /**
     * {@code "none"}, or the chunk cipher's algorithm and the id of the storage key whose namespace
     * chunk key named and sealed the chunks; without encryption the chunks are named with the
     * storage's chunk secret, whose id is {@link #keyId}.
     */
    public String encryption;
    /** The id of the key the chunk names (and, encrypted, the chunks) were made with. */
    public String keyId;
    /** Bytes of the chunked images, before compression: what a restore writes back. */
    public Long imagesBytes;
  }

  /**
   * How the stored bytes are encrypted: {@code "none"}, or the algorithm and the id of the storage
   * key they were encrypted with, which a restore looks up in the storage's key Secret.
   */
  public static final class Encryption {
    public static final Encryption NONE = new Encryption("none", null);

    public final String algorithm;
    public final String keyId;
    /**
     * Pod checkpoints: sha256 and size of the archive before encryption (the compressed tar),
     * which the restore decrypts into the checkpoint image's layer.
     */
    public final String plaintextSha256;
    public final Long plaintextBytes;

    public Encryption(String algorithm, String keyId) {
      this(algorithm, keyId, null, null);
    }

    public Encryption(String algorithm, String keyId, String plaintextSha256, Long plaintextBytes) {
      this.algorithm = algorithm;
      this.keyId = keyId;
      this.plaintextSha256 = plaintextSha256;
      this.plaintextBytes = plaintextBytes;
    }

    public static Encryption with(BoundKey key) {
      return new Encryption(SegmentCipher.ALGORITHM, key.keyId());
    }

    public static Encryption with(BoundKey key, String plaintextSha256, long plaintextBytes) {
      return new Encryption(SegmentCipher.ALGORITHM, key.keyId(), plaintextSha256, plaintextBytes);
    }

    public boolean isEncrypted() {
      return !NONE.algorithm.equals(algorithm);
    }

    // Written as the string "none" when not encrypted, which is what manifests held before
    // encryption existed, so older agents keep reading unencrypted manifests.
    @JsonValue
    Object toJson() {
      if (!isEncrypted()) {
        return algorithm;
      }
      Map<String, Object> fields = new LinkedHashMap<>();
      fields.put("algorithm", algorithm);
      fields.put("keyId", keyId);
      if (plaintextSha256 != null) {
        fields.put("plaintextSha256", plaintextSha256);
        fields.put("plaintextBytes", plaintextBytes);
      }
      return fields;
    }

    @JsonCreator(mode = JsonCreator.Mode.DELEGATING)
    static Encryption fromJson(JsonNode node) throws ManifestException {
      if (node.isTextual()) {
        return new Encryption(node.textValue(), null);
      }
      if (node.isObject()) {
        JsonNode bytes = node.path("plaintextBytes");
        return new Encryption(node.path("algorithm").textValue(), node.path("keyId").textValue(),
            node.path("plaintextSha256").textValue(), bytes.canConvertToLong() ? bytes.longValue() : null);
      }
      throw new ManifestException("archive.encryption must be \"none\" or an object {algorithm, keyId}");
    }
  }

  /** Whether the memory images are stored as chunks ({@link #chunks}) rather than in the archive. */
  public boolean isChunked() {
    return chunks != null;
  }

  /** Makes this the manifest of a deduplicated checkpoint, whose format says so. */
  public void chunked(Chunks stored) {
    chunks = stored;
    format = FORMAT_CHUNKED;
  }

  public byte[] toJson() {
    try {
      return JSON.writeValueAsBytes(this);
    } catch (JsonProcessingException e) {
      // Only plain fields and maps of plain values: serializing cannot fail short of a bug.
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Reads and validates a manifest.
   *
   * @throws ManifestException when it is not JSON, lacks a field a restore needs, or has a format
   *     this build does not understand
   */
  public static Manifest fromJson(byte[] json) throws ManifestException {
    JsonNode tree;
    try {
      tree = JSON.readTree(json);
    } catch (IOException e) {
      throw new ManifestException("manifest is not valid JSON: " + problem(e), e);
    }
    if (tree == null || !tree.isObject()) {
      throw new ManifestException("manifest is not a JSON object");
    }
    requireKnownFormat(tree.path("format"));
    Manifest manifest;
    try {
      manifest = JSON.treeToValue(tree, Manifest.class);
    } catch (JsonProcessingException e) {
      throw new ManifestException("manifest does not match format " + FORMAT + ": " + problem(e), e);
    }
    manifest.requireFieldsForRestore();
    return manifest;
  }

  // Jackson's own message ends with a location dump meant for developers.
  private static String problem(IOException e) {
    return e instanceof JsonProcessingException ? ((JsonProcessingException) e).getOriginalMessage() : e.getMessage();
  }

  private static void requireKnownFormat(JsonNode format) throws ManifestException {
    if (!format.isTextual()) {
      throw new ManifestException("manifest is missing required field format (expected " + FORMAT + ")");
    }
    Matcher version = STASIS_FORMAT.matcher(format.textValue());
    if (version.matches() && Integer.parseInt(version.group(1)) > FORMAT_VERSION) {
      throw new ManifestException("manifest format " + format.textValue()
          + " is newer than this agent understands (" + FORMAT_CHUNKED + "); upgrade the agent");
    }
    if (!format.textValue().equals(FORMAT) && !format.textValue().equals(FORMAT_CHUNKED)) {
      throw new ManifestException("manifest format " + format.textValue()
          + " is not one this agent understands (" + FORMAT + ", " + FORMAT_CHUNKED + ")");
    }
  }

  private void requireFieldsForRestore() throws ManifestException {
    List<String> missing = new ArrayList<>();
    if (source == null) {
      missing.add("source");
    }
    if (archive == null) {
      missing.add("archive");
    } else {
      if (archive.key == null) {
        missing.add("archive.key");
      }
      if (archive.codec == null) {
        missing.add("archive.codec");
      }
      if (archive.sha256 == null) {
        missing.add("archive.sha256");
      }
      if (archive.storedBytes == null) {
        missing.add("archive.storedBytes");
      }
      if (archive.encryption == null || archive.encryption.algorithm == null) {
        missing.add("archive.encryption.algorithm");
      } else if (archive.encryption.isEncrypted() && archive.encryption.keyId == null) {
        missing.add("archive.encryption.keyId");
      }
    }
    if (FORMAT_CHUNKED.equals(format)) {
      if (chunks == null) {
        missing.add("chunks");
      } else {
        if (chunks.indexKey == null) {
          missing.add("chunks.indexKey");
        }
        if (chunks.indexSha256 == null) {
          missing.add("chunks.indexSha256");
        }
        if (chunks.indexBytes == null) {
          missing.add("chunks.indexBytes");
        }
        if (chunks.codec == null) {
          missing.add("chunks.codec");
        }
        if (chunks.encryption == null) {
          missing.add("chunks.encryption");
        }
        if (chunks.keyId == null) {
          missing.add("chunks.keyId");
        }
        // A restore checks the images it writes back against it, and the storage's usage counts it.
        if (chunks.imagesBytes == null) {
          missing.add("chunks.imagesBytes");
        }
      }
    } else if (chunks != null) {
      throw new ManifestException("manifest format " + format + " has no chunks, but this one lists some; it was"
          + " altered or written by a broken agent");
    }
    if (!missing.isEmpty()) {
      throw new ManifestException("manifest is missing required field"
          + (missing.size() > 1 ? "s " : " ") + String.join(", ", missing));
    }
    if (archive.encryption.isEncrypted() && !SegmentCipher.ALGORITHM.equals(archive.encryption.algorithm)) {
      throw new ManifestException("the archive is encrypted with " + archive.encryption.algorithm
          + ", which this agent does not know (it knows none and " + SegmentCipher.ALGORITHM + "); upgrade the agent");
    }
  }
}
