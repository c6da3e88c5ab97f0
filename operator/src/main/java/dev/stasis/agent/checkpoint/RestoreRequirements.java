package dev.stasis.agent.checkpoint;

import dev.stasis.agent.process.ProcessInventory;
import dev.stasis.agent.process.TravellingFiles;
import dev.stasis.archive.Manifest;
import dev.stasis.criu.Criu;
import dev.stasis.criu.CriuException;
import dev.stasis.criu.RegularFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a restore of a tree will need from its node, observed on the source just before the dump:
 * the tree's inventory (paths, TCP connections, GPUs) and this CPU as {@code criu cpuinfo dump}
 * describes it. Recorded in the manifest for placement, the pre-flight and the files that travel.
 */
record RestoreRequirements(ProcessInventory inventory, String cpuinfo) {
  private static final Logger log = LoggerFactory.getLogger(RestoreRequirements.class);

  static RestoreRequirements observe(Criu criu, List<Long> tree, Path workDir) {
    String cpuinfo = null;
    try {
      cpuinfo = Base64.getEncoder().encodeToString(criu.dumpCpuinfo(workDir.resolve("cpuinfo")));
    } catch (CriuException | IOException e) {
      // The checkpoint is still good; its restores are then matched on CPU flags alone.
      log.warn("criu cpuinfo dump failed, the manifest will carry no cpuinfo: {}", e.getMessage());
    }
    return new RestoreRequirements(ProcessInventory.of(tree), cpuinfo);
  }

  /**
   * Into the manifest, with the files CRIU recorded in the dump's {@code imagesDir} and those that
   * travel in the archive (hashed here, after the freeze).
   */
  void recordIn(Manifest manifest, Path imagesDir, List<TravellingFiles.Captured> travelling) throws IOException {
    List<RegularFiles.RegularFile> recordedByCriu;
    try {
      recordedByCriu = RegularFiles.read(imagesDir);
    } catch (IOException e) {
      log.warn("cannot read the files CRIU recorded, the manifest lists no open files: {}", e.getMessage());
      recordedByCriu = List.of();
    }
    manifest.paths = inventory.requiredPaths(recordedByCriu, TravellingFiles.hash(travelling));
    manifest.tcpConnections = inventory.tcpConnections();
    manifest.gpuDevices = inventory.gpuDevices();
    manifest.cpuinfo = cpuinfo;
  }
}
