package dev.stasis.kubelet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.Callable;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLHandshakeException;

/**
 * The kubelet's checkpoint API (KEP-2008, Kubernetes 1.30+, feature gate ContainerCheckpoint):
 * {@code POST /checkpoint/{namespace}/{pod}/{container}?timeout=N}, authenticated with a bearer
 * token the kubelet checks by TokenReview and authorizes as {@code create} on
 * {@code nodes/checkpoint}. The runtime writes a tar archive into the kubelet's checkpoint folder
 * and the kubelet answers {@code {"items":["<path of the archive>"]}}.
 */
public final class KubeletClient {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
  private static final int MAX_MESSAGE = 500;

  private final URI base;
  private final Callable<String> token;
  private final HttpClient http;
  private final Duration answerGrace;

  /**
   * @param base e.g. https://node-1:10250
   * @param token the bearer token, read on every call because projected tokens rotate
   * @param tls whom to trust (see {@code TlsTrust})
   * @param answerGrace how long past the checkpoint timeout to wait for the kubelet's answer
   */
  public KubeletClient(URI base, Callable<String> token, SSLContext tls, Duration answerGrace) {
    this.base = base;
    this.token = token;
    this.answerGrace = answerGrace;
    this.http = HttpClient.newBuilder().sslContext(tls).connectTimeout(CONNECT_TIMEOUT)
        .version(HttpClient.Version.HTTP_1_1).build();
  }

  public URI base() {
    return base;
  }

  /**
   * Asks the kubelet to checkpoint one container and returns the path of the archive it wrote, as
   * the kubelet names it (on the node's file system).
   */
  public String checkpoint(String namespace, String pod, String container, Duration timeout)
      throws KubeletException {
    URI uri = base.resolve("/checkpoint/" + segment(namespace) + "/" + segment(pod) + "/" + segment(container)
        + "?timeout=" + Math.max(1, timeout.toSeconds()));
    String what = namespace + "/" + pod + "/" + container;
    HttpRequest request = HttpRequest.newBuilder(uri)
        .POST(HttpRequest.BodyPublishers.noBody())
        .header("Authorization", "Bearer " + bearerToken())
        .header("Accept", "application/json")
        .timeout(timeout.plus(answerGrace))
        .build();
    HttpResponse<String> response;
    try {
      response = http.send(request, HttpResponse.BodyHandlers.ofString());
    } catch (HttpConnectTimeoutException | ConnectException e) {
      throw unreachable(e);
    } catch (HttpTimeoutException e) {
      throw new KubeletException("KubeletTimeout", "the kubelet at " + base + " did not answer the checkpoint of "
          + what + " within " + timeout.plus(answerGrace).toSeconds() + "s; raise spec.options.timeoutSeconds if the "
          + "container's memory is large", e);
    } catch (SSLHandshakeException e) {
      throw new KubeletException("KubeletUntrusted", "the kubelet at " + base + " is not trusted: " + e.getMessage()
          + "; give the agent the CA that signed the kubelet's serving certificate (--kubelet-ca)", e);
    } catch (IOException e) {
      throw e.getCause() instanceof SSLHandshakeException ssl
          ? new KubeletException("KubeletUntrusted", "the kubelet at " + base + " is not trusted: " + ssl.getMessage()
              + "; give the agent the CA that signed the kubelet's serving certificate (--kubelet-ca)", e)
          : unreachable(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new KubeletException("Interrupted", "the agent was stopped while the kubelet checkpointed " + what);
    }
    return archivePath(response, what);
  }

  private String archivePath(HttpResponse<String> response, String what) throws KubeletException {
    String body = shorten(response.body());
    switch (response.statusCode()) {
      case 200 -> {
        try {
          JsonNode items = JSON.readTree(response.body()).path("items");
          if (items.isArray() && items.size() == 1 && items.get(0).isTextual()) {
            return items.get(0).textValue();
          }
        } catch (IOException e) {
          // answered below
        }
        throw new KubeletException("KubeletInvalidAnswer", "the kubelet at " + base
            + " answered the checkpoint of " + what + " with " + body + " instead of {\"items\":[\"<archive>\"]}");
      }
      case 401, 403 -> throw new KubeletException("KubeletForbidden", "the kubelet at " + base + " refused the agent ("
          + response.statusCode() + " " + body + "): the agent's ServiceAccount needs RBAC create on nodes/checkpoint "
          + "(config/rbac/agent.yaml) and the kubelet must authorize by webhook");
      case 404 -> throw new KubeletException("KubeletCheckpointNotFound", "the kubelet at " + base
          + " has no checkpoint of " + what + " to offer (404 " + body + "): its ContainerCheckpoint feature gate is off "
          + "(Kubernetes 1.30+ has it on by default), or it runs no such container");
      case 500 -> {
        boolean deadline = body.contains("DeadlineExceeded") || body.contains("deadline exceeded");
        throw new KubeletException(deadline ? "KubeletTimeout" : "RuntimeCannotCheckpoint",
            "the container runtime could not checkpoint " + what + ": " + body
                + (deadline ? "; raise spec.options.timeoutSeconds if the container's memory is large"
                    : "; the runtime needs CRIU and checkpoint support (CRI-O 1.25+ with enable_criu_support, containerd 2.0+)"));
      }
      default -> throw new KubeletException("KubeletFailed", "the kubelet at " + base + " answered the checkpoint of "
          + what + " with " + response.statusCode() + " " + body);
    }
  }

  private KubeletException unreachable(Exception e) {
    return new KubeletException("KubeletUnreachable", "cannot reach the kubelet at " + base + ": " + e
        + "; check --kubelet-url (default https://$NODE_NAME:10250) and that the agent may connect to port 10250", e);
  }

  private String bearerToken() throws KubeletException {
    try {
      return token.call().trim();
    } catch (Exception e) {
      throw new KubeletException("KubeletForbidden", "the agent has no token to show the kubelet: " + e.getMessage()
          + "; mount its ServiceAccount token (--kubelet-token-file)", e);
    }
  }

  private static String segment(String name) {
    return URLEncoder.encode(name, StandardCharsets.UTF_8);
  }

  private static String shorten(String body) {
    String text = body == null ? "" : body.strip();
    return text.length() > MAX_MESSAGE ? text.substring(0, MAX_MESSAGE) + "…" : text;
  }
}
