package dev.stasis.agent;

import dev.stasis.kubelet.KubeletClient;
import dev.stasis.kubelet.KubeletException;
import dev.stasis.tls.TlsTrust;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import javax.net.ssl.SSLContext;

/**
 * How the agent reaches its node's kubelet: the kubelet's URL, the token it shows and the CA it
 * trusts, and the kubelet's checkpoint folder (a hostPath in a cluster).
 */
public record KubeletSettings(
    URI url,
    Path tokenFile,
    Path caFile,
    boolean insecureSkipTlsVerify,
    Path checkpointDir,
    Duration answerGrace) {

  public static final Path SERVICE_ACCOUNT = Path.of("/var/run/secrets/kubernetes.io/serviceaccount");
  public static final Path KUBELET_CHECKPOINTS = Path.of("/var/lib/kubelet/checkpoints");
  public static final Duration ANSWER_GRACE = Duration.ofSeconds(30);

  /** A cluster node's defaults: kubelet at https://NODE:10250, the agent's ServiceAccount token and CA. */
  public static KubeletSettings defaults(String nodeName) {
    return new KubeletSettings(URI.create("https://" + nodeName + ":10250"), SERVICE_ACCOUNT.resolve("token"),
        SERVICE_ACCOUNT.resolve("ca.crt"), false, KUBELET_CHECKPOINTS, ANSWER_GRACE);
  }

  /** What an operator of the cluster should know about these settings; shown on the NodeProfile. */
  public List<String> warnings() {
    return insecureSkipTlsVerify
        ? List.of("kubelet TLS verification is off (--kubelet-insecure-skip-tls-verify): anyone on the path to "
            + url + " can impersonate the kubelet and read the agent's token")
        : List.of();
  }

  public KubeletClient client() throws KubeletException {
    return new KubeletClient(url, () -> Files.readString(tokenFile), tls(), answerGrace);
  }

  private SSLContext tls() throws KubeletException {
    if (insecureSkipTlsVerify) {
      return TlsTrust.insecure();
    }
    try {
      return TlsTrust.trusting(Files.readAllBytes(caFile));
    } catch (IOException e) {
      throw new KubeletException("KubeletUntrusted", "cannot read the CA that signs the kubelet's serving certificate ("
          + caFile + "): " + e.getMessage() + "; set --kubelet-ca");
    }
  }
}
