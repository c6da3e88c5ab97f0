package dev.stasis.cli;

import dev.stasis.metrics.MetricsServer;
import java.io.IOException;
import picocli.CommandLine.Option;

/** Where a role serves /metrics, /healthz and /readyz; each role has its own defaults. */
final class MetricsOptions {
  @Option(names = "--metrics-port", paramLabel = "PORT", converter = Converters.Port.class, order = 90,
      description = "Port of /metrics, /healthz and /readyz; 0: any free port (default: 8080; the agent: 8081).")
  Integer port;

  @Option(names = "--metrics-address", paramLabel = "ADDRESS", order = 91,
      description = "Address to serve them on (default: 0.0.0.0; local: 127.0.0.1).")
  String address;

  MetricsServer start(String defaultAddress, int defaultPort, MetricsServer.Readiness readiness) throws IOException {
    return MetricsServer.start(address != null ? address : defaultAddress, port != null ? port : defaultPort, readiness);
  }
}
