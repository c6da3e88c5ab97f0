package dev.stasis.bench;

import dev.stasis.criu.Criu;
import dev.stasis.criu.DumpOptions;
import dev.stasis.criu.RestoreOptions;
import dev.stasis.criu.RestoredTree;
import dev.stasis.criu.TreeOptions;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The shell script people write instead of using Stasis, run step by step and timed:
 * {@code criu dump -D dir}, {@code tar | zstd -3 -T0} into a file, and an upload of that file with
 * curl (one PUT, SigV4); back again with a curl download, {@code zstd -d | tar x} and
 * {@code criu restore}. CRIU runs with exactly the arguments the agent gives it, so the two differ
 * only in what happens around CRIU.
 */
final class ByHandPipeline {
  private final Criu criu;
  private final String bucketUrl;
  private final String credentials;

  ByHandPipeline(Criu criu, String s3Endpoint, String bucket, String accessKey, String secretKey) {
    this.criu = criu;
    this.bucketUrl = s3Endpoint + "/" + bucket;
    this.credentials = accessKey + ":" + secretKey;
  }

  record Checkpoint(double dumpSeconds, double compressSeconds, double uploadSeconds, long frozenMicros,
      long archiveBytes) {
    double totalSeconds() {
      return dumpSeconds + compressSeconds + uploadSeconds;
    }
  }

  record Restore(double downloadSeconds, double unpackSeconds, double criuSeconds, RestoredTree tree) {
    double totalSeconds() {
      return downloadSeconds + unpackSeconds + criuSeconds;
    }
  }

  Checkpoint checkpoint(long pid, Path dir, String key) throws Exception {
    Path images = dir.resolve("images");
    Path archive = dir.resolve("archive.tar.zst");
    long start = System.nanoTime();
    Criu.DumpResult dumped = dump(pid, dir);
    long dumpedAt = System.nanoTime();
    run("sh", "-c", "tar -C \"$1\" -cf - . | zstd -3 -T0 -q -o \"$2\"", "sh", images.toString(), archive.toString());
    long compressedAt = System.nanoTime();
    curl("-T", archive.toString(), url(key));
    long uploadedAt = System.nanoTime();
    return new Checkpoint(seconds(start, dumpedAt), seconds(dumpedAt, compressedAt), seconds(compressedAt, uploadedAt),
        dumped.stats().frozenTimeMicros(), Files.size(archive));
  }

  /** {@code criu dump} of the tree into {@code dir}/images, with the arguments the agent gives it. */
  Criu.DumpResult dump(long pid, Path dir) throws Exception {
    return criu.dump(new DumpOptions((int) pid, dir.resolve("images"), dir, false, false, TreeOptions.PLAIN,
        Duration.ofMinutes(10)));
  }

  /** Returns once the restored tree runs; CRIU stays its parent until it is killed. */
  Restore restore(Path dir, String key) throws Exception {
    Path images = Files.createDirectories(dir.resolve("images"));
    Path archive = dir.resolve("archive.tar.zst");
    long start = System.nanoTime();
    curl("-o", archive.toString(), url(key));
    long downloadedAt = System.nanoTime();
    run("sh", "-c", "zstd -d -c -q \"$1\" | tar -x -C \"$2\"", "sh", archive.toString(), images.toString());
    long unpackedAt = System.nanoTime();
    RestoredTree tree = criu.restore(new RestoreOptions(images, dir, TreeOptions.PLAIN, Duration.ofMinutes(10)));
    long runningAt = System.nanoTime();
    return new Restore(seconds(start, downloadedAt), seconds(downloadedAt, unpackedAt), seconds(unpackedAt, runningAt),
        tree);
  }

  void delete(String key) throws Exception {
    curl("-X", "DELETE", url(key));
  }

  private String url(String key) {
    return bucketUrl + "/" + key;
  }

  private void curl(String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of("curl", "-sS", "-f", "--aws-sigv4", "aws:amz:us-east-1:s3",
        "--user", credentials,
        // What a script sends over plain HTTP: the payload is not hashed a second time for the signature.
        "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"));
    command.addAll(List.of(args));
    run(command.toArray(String[]::new));
  }

  private static void run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(10, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new IOException(command[0] + " did not finish within 10 minutes");
    }
    if (p.exitValue() != 0) {
      throw new IOException(command[0] + " " + command[1] + "… exited with " + p.exitValue() + ": " + output);
    }
  }

  private static double seconds(long from, long to) {
    return (to - from) / 1e9;
  }
}
