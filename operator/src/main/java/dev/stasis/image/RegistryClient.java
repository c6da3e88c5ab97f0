package dev.stasis.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLHandshakeException;

/**
 * The OCI distribution API for one repository: blobs uploaded in a streamed PATCH and committed by
 * digest, manifests put and deleted. Authenticates the way registries ask to (the answer to
 * {@code GET /v2/}): not at all, HTTP Basic, or a Bearer token from the registry's token service
 * for this repository's pull, push and delete scope.
 *
 * <p>Credentials and checkpoint images (a container's memory) go to the registry's own host only
 * (scheme, host and port of spec.registry.url): the username and password reach a token service
 * only on that host (elsewhere a token is asked for without them), an upload location on another
 * host is refused, and redirects are followed by hand, without credentials when they lead elsewhere.
 */
public final class RegistryClient {
  public static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern CHALLENGE_PARAM = Pattern.compile("(\\w+)=\"([^\"]*)\"");
  private static final Duration TIMEOUT = Duration.ofSeconds(60);
  private static final Set<Integer> REDIRECTS = Set.of(301, 302, 303, 307, 308);
  /** Only requests without a body are sent again to where a redirect points. */
  private static final Set<String> BODYLESS = Set.of("GET", "HEAD", "DELETE");
  private static final int MAX_REDIRECTS = 5;

  private final Registry registry;
  private final String repository;
  private final HttpClient http;
  private final String authorization;

  private RegistryClient(Registry registry, String repository) throws RegistryException {
    this.registry = registry;
    this.repository = repository;
    this.http = HttpClient.newBuilder().sslContext(registry.tls()).connectTimeout(Duration.ofSeconds(10))
        .followRedirects(HttpClient.Redirect.NEVER).version(HttpClient.Version.HTTP_1_1).build();
    this.authorization = authenticate();
  }

  /** Connects to the registry and authenticates for {@code repository}. */
  public static RegistryClient open(Registry registry, String repository) throws RegistryException {
    return new RegistryClient(registry, repository);
  }

  /**
   * Uploads a blob whose digest is known in advance, streaming it from {@code content}, and
   * commits it only if the bytes sent hash to that digest: a damaged source never becomes a blob.
   */
  public void pushBlob(String sha256, long size, InputStream content)
      throws RegistryException, BlobMismatchException, IOException {
    String digest = "sha256:" + sha256;
    if (send(request("/blobs/" + digest).method("HEAD", HttpRequest.BodyPublishers.noBody()), "HEAD blob").statusCode() == 200) {
      return; // the registry has it already
    }
    HttpResponse<String> started = expect(send(request("/blobs/uploads/").POST(HttpRequest.BodyPublishers.noBody()),
        "start an upload"), 202, "start an upload");
    URI upload = location(started);
    MessageDigest hash = sha256Digest();
    CountingDigestStream sent = new CountingDigestStream(content, hash);
    HttpResponse<String> patched;
    try {
      patched = send(HttpRequest.newBuilder(upload).timeout(Duration.ofHours(6))
          .header("Content-Type", "application/octet-stream")
          .method("PATCH", HttpRequest.BodyPublishers.ofInputStream(() -> sent)), "upload the blob");
      expect(patched, 202, "upload the blob");
    } catch (RegistryException e) {
      cancel(upload);
      if (sent.failure != null) {
        throw sent.failure; // the source failed, not the registry
      }
      throw e;
    }
    String actual = HexFormat.of().formatHex(hash.digest());
    if (!actual.equals(sha256) || sent.count != size) {
      cancel(location(patched));
      throw new BlobMismatchException("the bytes read (" + sent.count + " bytes, sha256 " + actual
          + ") are not the expected " + size + " bytes with sha256 " + sha256);
    }
    URI commit = location(patched);
    String separator = commit.getQuery() == null ? "?" : "&";
    expect(send(HttpRequest.newBuilder(URI.create(commit + separator + "digest=" + URLEncoder.encode(digest, StandardCharsets.UTF_8)))
        .timeout(TIMEOUT).PUT(HttpRequest.BodyPublishers.noBody()), "commit the blob"), 201, "commit the blob");
  }

  /** Uploads a small blob (an image config) from memory. */
  public void pushBlob(byte[] content) throws RegistryException {
    try {
      pushBlob(sha256(content), content.length, new java.io.ByteArrayInputStream(content));
    } catch (BlobMismatchException | IOException e) {
      throw new IllegalStateException("bytes in memory cannot fail to be read", e);
    }
  }

  /** Puts an OCI image manifest under {@code tag}; returns its digest (sha256:…). */
  public String putManifest(String tag, byte[] manifest) throws RegistryException {
    expect(send(request("/manifests/" + tag).header("Content-Type", OCI_MANIFEST)
        .PUT(HttpRequest.BodyPublishers.ofByteArray(manifest)), "put the manifest"), 201, "put the manifest");
    return "sha256:" + sha256(manifest);
  }

  /** The manifest stored under a tag or digest, as the registry serves it to pullers. */
  public byte[] manifest(String reference) throws RegistryException {
    HttpResponse<byte[]> response = sendBytes(request("/manifests/" + reference).header("Accept", OCI_MANIFEST).GET());
    if (response.statusCode() != 200) {
      throw failure(response.statusCode(), new String(response.body(), StandardCharsets.UTF_8), "get the manifest");
    }
    return response.body();
  }

  /**
   * Whether the registry serves a manifest (of any kind a runtime pulls: OCI or Docker, single or
   * an index) under a tag or digest.
   */
  public boolean hasManifest(String reference) throws RegistryException {
    HttpResponse<String> response = send(request("/manifests/" + reference).header("Accept", String.join(", ",
        OCI_MANIFEST, "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json"))
        .method("HEAD", HttpRequest.BodyPublishers.noBody()), "look up the manifest");
    if (response.statusCode() == 404) {
      return false;
    }
    expect(response, 200, "look up the manifest");
    return true;
  }

  /** Deletes a manifest by digest; true if it was there. Registries must allow deletion for this. */
  public boolean deleteManifest(String digest) throws RegistryException {
    HttpResponse<String> response = send(request("/manifests/" + digest).DELETE(), "delete the manifest");
    if (response.statusCode() == 404) {
      return false;
    }
    expect(response, 202, "delete the manifest");
    return true;
  }

  public String reference(String digest) {
    return registry.host() + "/" + repository + "@" + digest;
  }

  // --- authentication ---

  private String authenticate() throws RegistryException {
    HttpResponse<String> probe = send(HttpRequest.newBuilder(registry.base().resolve("/v2/")).timeout(TIMEOUT).GET(), "connect", null);
    if (probe.statusCode() == 200) {
      return null;
    }
    String challenge = probe.headers().firstValue("WWW-Authenticate").orElse("");
    if (probe.statusCode() != 401 || challenge.isEmpty()) {
      throw failure(probe.statusCode(), probe.body(), "connect");
    }
    String basic = registry.username() == null ? null : "Basic " + Base64.getEncoder().encodeToString(
        (registry.username() + ":" + registry.password()).getBytes(StandardCharsets.UTF_8));
    if (challenge.regionMatches(true, 0, "Basic", 0, 5)) {
      if (basic == null) {
        throw unauthorized("it asks for credentials and none are configured (spec.registry.credentialsSecret)");
      }
      int status = send(HttpRequest.newBuilder(registry.base().resolve("/v2/")).timeout(TIMEOUT).GET(), "connect", basic)
          .statusCode();
      if (status == 401 || status == 403) {
        throw unauthorized("it refused the username and password (" + status + ")");
      }
      return basic;
    }
    if (challenge.regionMatches(true, 0, "Bearer", 0, 6)) {
      return "Bearer " + token(challenge, basic);
    }
    throw unauthorized("it asks for an authentication scheme Stasis does not speak: " + challenge);
  }

  private String token(String challenge, String basic) throws RegistryException {
    Map<String, String> params = new LinkedHashMap<>();
    Matcher m = CHALLENGE_PARAM.matcher(challenge);
    while (m.find()) {
      params.put(m.group(1), m.group(2));
    }
    String realm = params.get("realm");
    if (realm == null) {
      throw unauthorized("its Bearer challenge names no token service: " + challenge);
    }
    String query = (params.containsKey("service") ? "service=" + encode(params.get("service")) + "&" : "")
        + "scope=" + encode("repository:" + repository + ":pull,push,delete");
    URI tokenService = URI.create(realm + (realm.contains("?") ? "&" : "?") + query);
    // The credentials are the registry's: a realm on another host gets none (it may ask for them
    // in a registry's name and keep them).
    boolean ownHost = isRegistryHost(tokenService);
    HttpResponse<String> response = send(HttpRequest.newBuilder(tokenService).timeout(TIMEOUT).GET(), "get a token",
        ownHost ? basic : null);
    if (response.statusCode() != 200) {
      throw response.statusCode() == 401 || response.statusCode() == 403
          ? unauthorized("its token service refused " + (ownHost || basic == null ? "the credentials"
              : "to give a token without credentials: it is at " + origin(tokenService) + ", not on the registry's host,"
                  + " and Stasis sends the registry's credentials only there") + " (" + response.statusCode() + ")")
          : failure(response.statusCode(), response.body(), "get a token");
    }
    try {
      JsonNode body = JSON.readTree(response.body());
      String token = body.path("token").asText(body.path("access_token").asText(""));
      if (token.isEmpty()) {
        throw unauthorized("its token service answered without a token");
      }
      return token;
    } catch (IOException e) {
      throw unauthorized("its token service answered with something other than JSON");
    }
  }

  // --- plumbing ---

  private HttpRequest.Builder request(String path) {
    return HttpRequest.newBuilder(registry.base().resolve("/v2/" + repository + path)).timeout(TIMEOUT);
  }

  private HttpResponse<String> send(HttpRequest.Builder request, String what) throws RegistryException {
    return send(request, what, authorization);
  }

  private HttpResponse<String> send(HttpRequest.Builder request, String what, String auth) throws RegistryException {
    return exchange(request.build(), what, auth, HttpResponse.BodyHandlers.ofString());
  }

  private HttpResponse<byte[]> sendBytes(HttpRequest.Builder request) throws RegistryException {
    return exchange(request.build(), "get the manifest", authorization, HttpResponse.BodyHandlers.ofByteArray());
  }

  /**
   * Sends {@code request}, with {@code auth} only if it goes to the registry's own host, and follows
   * redirects of requests without a body the same way.
   */
  private <T> HttpResponse<T> exchange(HttpRequest request, String what, String auth, HttpResponse.BodyHandler<T> body)
      throws RegistryException {
    try {
      for (int hops = 0; ; hops++) {
        HttpRequest.Builder sent = HttpRequest.newBuilder(request, (name, value) -> true);
        if (auth != null && isRegistryHost(request.uri())) {
          sent.header("Authorization", auth);
        }
        HttpResponse<T> response = http.send(sent.build(), body);
        var location = response.headers().firstValue("Location");
        boolean redirect = REDIRECTS.contains(response.statusCode()) && location.isPresent()
            && BODYLESS.contains(request.method());
        if (!redirect || hops >= MAX_REDIRECTS) {
          return response;
        }
        request = HttpRequest.newBuilder(request, (name, value) -> !name.equalsIgnoreCase("Authorization"))
            .uri(response.uri().resolve(location.get())).build();
      }
    } catch (IOException e) {
      throw transport(e, what);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RegistryException("Interrupted", "stopped while talking to the registry");
    }
  }

  /** Scheme, host and port the same as spec.registry.url's (default ports filled in). */
  private boolean isRegistryHost(URI uri) {
    return origin(uri).equals(origin(registry.base()));
  }

  private static String origin(URI uri) {
    String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
    int port = uri.getPort() != -1 ? uri.getPort() : scheme.equals("https") ? 443 : scheme.equals("http") ? 80 : -1;
    return scheme + "://" + (uri.getHost() == null ? "" : uri.getHost().toLowerCase(Locale.ROOT)) + ":" + port;
  }

  private RegistryException transport(IOException e, String what) {
    if (e instanceof SSLHandshakeException || e.getCause() instanceof SSLHandshakeException) {
      return new RegistryException("RegistryUntrusted", "the registry " + registry.base() + " is not trusted: "
          + e.getMessage() + "; put the CA that signed its certificate into spec.registry.caSecret", e);
    }
    if (e instanceof ConnectException || e instanceof HttpConnectTimeoutException || e.getCause() instanceof ConnectException) {
      return new RegistryException("RegistryUnreachable", "cannot reach the registry " + registry.base() + " to " + what
          + ": " + e + "; check spec.registry.url and that the nodes may connect to it", e);
    }
    return new RegistryException("RegistryUnreachable", "talking to the registry " + registry.base() + " to " + what
        + " failed: " + e, e);
  }

  private HttpResponse<String> expect(HttpResponse<String> response, int status, String what) throws RegistryException {
    if (response.statusCode() != status) {
      throw failure(response.statusCode(), response.body(), what);
    }
    return response;
  }

  private RegistryException failure(int status, String body, String what) {
    if (status == 401 || status == 403) {
      return unauthorized("it answered " + status + " to " + what + ": " + errors(body));
    }
    return new RegistryException("RegistryPushFailed", "the registry " + registry.base() + " answered " + status
        + " when asked to " + what + " in " + repository + ": " + errors(body));
  }

  private RegistryException unauthorized(String why) {
    return new RegistryException("RegistryUnauthorized", "the registry " + registry.base() + " refused Stasis: " + why
        + "; check the username and password in spec.registry.credentialsSecret and that they may push to "
        + repository);
  }

  /** The registry's own error messages ({"errors":[{"code","message"}]}), else its raw answer. */
  private static String errors(String body) {
    try {
      JsonNode errors = JSON.readTree(body).path("errors");
      if (errors.isArray() && !errors.isEmpty()) {
        StringBuilder text = new StringBuilder();
        errors.forEach(e -> text.append(text.length() == 0 ? "" : "; ").append(e.path("code").asText())
            .append(": ").append(e.path("message").asText()));
        return text.toString();
      }
    } catch (IOException e) {
      // not JSON: show it as it is
    }
    String text = body == null ? "" : body.strip();
    return text.length() > 300 ? text.substring(0, 300) + "…" : text;
  }

  /** Where the registry says to send the upload next: on its own host only. */
  private URI location(HttpResponse<?> response) throws RegistryException {
    String location = response.headers().firstValue("Location")
        .orElseThrow(() -> new RegistryException("RegistryPushFailed", "the registry " + registry.base()
            + " started an upload without saying where to send it (no Location header)"));
    URI uri = response.uri().resolve(location);
    if (!isRegistryHost(uri)) {
      throw new RegistryException("RegistryPushFailed", "the registry " + registry.base() + " asked to send the"
          + " upload to " + origin(uri) + ", another host: Stasis sends checkpoint images and the registry's credentials"
          + " only to the registry's own host. Make the registry name its own host in upload locations (for"
          + " distribution, http.host), or point spec.registry.url at the host it names");
    }
    return uri;
  }

  private void cancel(URI upload) {
    try {
      send(HttpRequest.newBuilder(upload).timeout(TIMEOUT).DELETE(), "cancel the upload");
    } catch (RegistryException e) {
      // the registry forgets unfinished uploads on its own
    }
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }

  public static String sha256(byte[] bytes) {
    return HexFormat.of().formatHex(sha256Digest().digest(bytes));
  }

  private static MessageDigest sha256Digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The bytes read did not hash to the digest the blob was announced with; nothing was committed. */
  public static final class BlobMismatchException extends Exception {
    BlobMismatchException(String message) {
      super(message);
    }
  }

  private static final class CountingDigestStream extends DigestInputStream {
    private long count;
    private IOException failure;

    CountingDigestStream(InputStream in, MessageDigest digest) {
      super(in, digest);
    }

    @Override
    public int read() throws IOException {
      try {
        int b = super.read();
        if (b >= 0) count++;
        return b;
      } catch (IOException e) {
        failure = e;
        throw e;
      }
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      try {
        int n = super.read(b, off, len);
        if (n > 0) count += n;
        return n;
      } catch (IOException e) {
        failure = e;
        throw e;
      }
    }

    @Override
    public void close() {
      // the caller owns the source
    }
  }
}
