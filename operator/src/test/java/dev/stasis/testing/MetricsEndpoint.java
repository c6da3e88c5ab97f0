package dev.stasis.testing;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The metrics and health endpoints of an operator or agent (its --metrics-port), as Prometheus and a kubelet probe read them. */
public final class MetricsEndpoint {
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  private MetricsEndpoint() {}

  /** What {@code GET path} on the local {@code port} answered. */
  public static Answer get(int port, String path) throws IOException, InterruptedException {
    HttpResponse<String> response = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path)).build(),
        HttpResponse.BodyHandlers.ofString());
    return new Answer(response.statusCode(), response.body());
  }

  /**
   * The sum over every series of {@code name} in a Prometheus text page whose labels contain all of
   * {@code labels} (a series of no labels, when none are asked for).
   */
  public static Optional<Double> value(String metrics, String name, String... labels) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + "(?:\\{([^}]*)\\})? (\\S+)$").matcher(metrics);
    Double sum = null;
    while (m.find()) {
      String found = m.group(1) == null ? "" : m.group(1);
      boolean all = true;
      for (String label : labels) {
        all &= found.contains(label);
      }
      if (all) {
        sum = (sum == null ? 0 : sum) + Double.parseDouble(m.group(2));
      }
    }
    return Optional.ofNullable(sum);
  }

  public record Answer(int status, String body) {}
}
