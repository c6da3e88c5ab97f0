package dev.stasis.agent.restore;

import dev.stasis.agent.WorkFailure;
import dev.stasis.agent.process.FileIdentity;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.Manifest.RequiredPath;
import dev.stasis.criu.Criu;
import dev.stasis.criu.CriuException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Checks on the node chosen for a restore, before the archive is downloaded and before CRIU runs,
 * that the node can run the checkpoint: {@code criu cpuinfo check} against the source's CPU, and
 * every path the manifest recorded present with the same size and build-id (except the files that
 * travel in the archive). CRIU would fail the restore on either, later and with less to go on; the
 * pre-flight names everything that differs.
 */
final class Preflight {
  /** Listing more than this many paths helps nobody; the count of the rest is given. */
  private static final int MAX_LISTED = 10;

  private final Criu criu;
  private final Path hostRoot;

  Preflight(Criu criu, Path hostRoot) {
    this.criu = criu;
    this.hostRoot = hostRoot;
  }

  /**
   * @throws PreflightFailed {@code PreflightCpuMismatch}, {@code PreflightPathMissing} or
   *     {@code PreflightPathChanged} (in that order of precedence) listing every difference
   * @throws WorkFailure when the check itself cannot run (CRIU, work folder, manifest)
   */
  void check(Manifest manifest, boolean strict, Path workDir, String node) throws WorkFailure {
    Optional<String> cpu = cpuMismatch(manifest, strict, workDir);
    List<FileIdentity.Difference> differences = pathDifferences(manifest);
    if (cpu.isEmpty() && differences.isEmpty()) {
      return;
    }
    List<String> findings = new ArrayList<>();
    cpu.ifPresent(findings::add);
    differences.stream().limit(MAX_LISTED).map(FileIdentity.Difference::description).forEach(findings::add);
    if (differences.size() > MAX_LISTED) {
      findings.add("and " + (differences.size() - MAX_LISTED) + " more paths");
    }
    String reason = cpu.isPresent() ? "PreflightCpuMismatch"
        : differences.stream().anyMatch(FileIdentity.Difference::missing) ? "PreflightPathMissing"
        : "PreflightPathChanged";
    String advice = cpu.isPresent()
        ? "restore on a node with the source's CPU features (spec.placement)"
        : "put the files back at the same paths, or restore on a node that has them (spec.placement)";
    throw new PreflightFailed(reason, "pre-flight on node " + node + " failed, no restore was attempted: "
        + String.join("; ", findings) + ". To fix: " + advice);
  }

  private Optional<String> cpuMismatch(Manifest manifest, boolean strict, Path workDir) throws WorkFailure {
    if (manifest.cpuinfo == null) {
      return Optional.empty(); // taken by an agent that did not record the CPU: placement's flag check must do
    }
    byte[] image;
    try {
      image = Base64.getDecoder().decode(manifest.cpuinfo);
    } catch (IllegalArgumentException e) {
      throw new WorkFailure("ManifestInvalid", "the manifest's cpuinfo is not base64: " + e.getMessage());
    }
    try {
      return criu.checkCpuinfo(image, workDir.resolve("preflight"), strict)
          .map(problem -> "this CPU cannot run what the source CPU (" + sourceCpu(manifest) + ") ran: criu cpuinfo check: "
              + problem);
    } catch (CriuException e) {
      throw new WorkFailure(e.reason(), e.getMessage(), e.logTail());
    } catch (IOException e) {
      throw new WorkFailure("WorkDirUnavailable", "cannot prepare the pre-flight folder under " + workDir + ": " + e.getMessage());
    }
  }

  private List<FileIdentity.Difference> pathDifferences(Manifest manifest) {
    List<FileIdentity.Difference> differences = new ArrayList<>();
    if (manifest.paths == null) {
      return differences;
    }
    for (RequiredPath path : manifest.paths) {
      if (path.path == null || !path.path.startsWith("/") || path.kind == null) {
        continue; // nothing this agent can look up
      }
      if (path.travelsAs != null) {
        continue; // in the archive: put back before CRIU runs (TravellingFiles)
      }
      Path onNode = hostRoot.resolve(path.path.substring(1)).normalize();
      if (!onNode.startsWith(hostRoot)) {
        continue; // "/../x" comes from no /proc, only from a doctored manifest: never look outside the node's root
      }
      FileIdentity.compare(path, onNode).ifPresent(differences::add);
    }
    return differences;
  }

  private static String sourceCpu(Manifest manifest) {
    Object cpu = manifest.nodeProfile == null ? null : manifest.nodeProfile.get("cpu");
    if (cpu instanceof Map<?, ?> info && info.get("modelName") != null) {
      return info.get("modelName") + " on node " + manifest.source.node;
    }
    return "node " + manifest.source.node;
  }
}
