package dev.stasis.cli;

import dev.stasis.kube.ChunkSecrets;
import ch.qos.logback.classic.Level;
import com.fasterxml.jackson.annotation.JsonInclude.Include;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code stasis inspect}: what a stored checkpoint holds, read and verified as a restore would. */
@Command(name = "inspect", mixinStandardHelpOptions = true, versionProvider = Main.Version.class, sortOptions = false,
    description = {"Shows what a Completed checkpoint holds: the process tree with commands, open files and working"
        + " folders, sockets, memory, CRIU's statistics, the source node's profile and which nodes can restore it;"
        + " for a pod's checkpoint also each container's image, command and mounts (config.dump, spec.dump).",
        "The manifest and archive are read from the checkpoint's storage and checked against the sha256 the"
        + " Checkpoint's status recorded, and decrypted with the storage's key, as the operator reads them: this needs"
        + " get on the storage's Secrets. The archive is unpacked into --work-dir while it is read."},
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {"0:shown", "1:the checkpoint cannot be read (the message says why)", "2:bad usage"})
final class InspectCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "CHECKPOINT", description = "The Checkpoint's name.")
  String checkpoint;

  @Option(names = {"-n", "--namespace"}, paramLabel = "NS", order = 1,
      description = "The Checkpoint's namespace (default: the kubeconfig context's, else default).")
  String namespace;

  @Option(names = {"-c", "--container"}, paramLabel = "NAME", order = 2,
      description = "Only this container of a pod's checkpoint (default: every container).")
  String container;

  @Option(names = {"-o", "--format"}, paramLabel = "text|json", defaultValue = "text", order = 3,
      converter = Converters.ReportFormat.class, description = "text for people, json for programs (default: ${DEFAULT-VALUE}).")
  String format;

  @Option(names = "--work-dir", paramLabel = "DIR", converter = Converters.DirectoryPath.class, order = 4,
      description = "Where the archive is unpacked while it is read; needs room for it (default: the system's temporary"
          + " folder).")
  Path workDir = Path.of(System.getProperty("java.io.tmpdir"));

  @Option(names = "--operator-namespace", paramLabel = "NS", order = 5,
      description = "The namespace the operator runs in, where it keeps the chunk secrets of deduplicating storages"
          + " that do not encrypt (default: the kubeconfig context's, else default; with the Helm chart, its release"
          + " namespace, e.g. stasis-system).")
  String operatorNamespace;

  @Mixin KubeconfigOption cluster;

  @Spec picocli.CommandLine.Model.CommandSpec spec;

  @Override
  public Integer call() throws Exception {
    // What the command prints is its answer; the libraries' notes (fabric8 on v1alpha1) would only get in its way.
    LogSetup.apply(LogSetup.Format.text, Level.ERROR);
    try (var client = cluster.client()) {
      String ns = namespace != null ? namespace : client.getNamespace() != null ? client.getNamespace() : "default";
      CheckpointReport report;
      try {
        report = new CheckpointInspection(client, workDir, operatorNamespace != null ? new ChunkSecrets(client,
            operatorNamespace) : new ChunkSecrets(client)).inspect(ns, checkpoint, container);
      } catch (CheckpointInspection.Refused e) {
        spec.commandLine().getErr().println("stasis inspect: " + e.getMessage());
        return 1;
      }
      var out = spec.commandLine().getOut();
      out.print("json".equals(format)
          ? new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).setSerializationInclusion(Include.NON_NULL)
              .writeValueAsString(report) + "\n"
          : report.text());
      out.flush();
      return 0;
    }
  }
}
