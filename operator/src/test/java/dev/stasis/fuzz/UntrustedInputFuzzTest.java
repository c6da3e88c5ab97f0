package dev.stasis.fuzz;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import dev.stasis.archive.ArchiveCodec;
import dev.stasis.archive.ArchiveIntegrityException;
import dev.stasis.archive.ArchiveReader;
import dev.stasis.archive.ArchiveSummary;
import dev.stasis.archive.ArchiveWriter;
import dev.stasis.archive.Manifest;
import dev.stasis.archive.ManifestException;
import dev.stasis.criu.DumpStats;
import dev.stasis.kubelet.KubeletClient;
import dev.stasis.kubelet.KubeletException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Readers of bytes Stasis does not control (manifests and archives from storage, CRIU's stats
 * image, the kubelet's answers) get thousands of mutated inputs each: every one must end in the reader's own clear error
 * or a correct result, never another exception and never a hang.
 */
class UntrustedInputFuzzTest {
  private static final int CASES = 3000;
  private static final Duration PER_INPUT = Duration.ofSeconds(5);
  private static final ExecutorService RUNNER = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "fuzz");
    t.setDaemon(true);
    return t;
  });

  @TempDir Path dir;

  @AfterAll
  static void stop() {
    RUNNER.shutdownNow();
  }

  @Test
  void manifests() throws Exception {
    byte[] valid = validManifest().toJson();
    Mutator mutator = new Mutator(1);
    for (int i = 0; i < CASES; i++) {
      byte[] input = mutator.mutate(valid);
      int seedCase = i;
      within(() -> {
        try {
          Manifest m = Manifest.fromJson(input);
          assertThat(m.archive.key).as("case %d", seedCase).isNotBlank();
          assertThat(m.archive.sha256).isNotBlank();
        } catch (ManifestException expected) {
          assertThat(expected.getMessage()).as("case %d", seedCase).startsWith("manifest");
        }
        return null;
      }, "manifest case " + i);
    }
  }

  @Test
  void criuStatsImages() throws Exception {
    byte[] valid;
    try (InputStream in = getClass().getResourceAsStream("/criu/stats-dump")) {
      valid = in.readAllBytes();
    }
    Mutator mutator = new Mutator(2);
    for (int i = 0; i < CASES * 3; i++) {
      byte[] input = mutator.mutate(valid);
      within(() -> {
        try {
          DumpStats.parse(input);
        } catch (IOException expected) {
          assertThat(expected.getMessage()).contains("stats image");
        }
        return null;
      }, "stats case " + i);
    }
  }

  @Test
  void archives() throws Exception {
    Path images = Files.createDirectories(dir.resolve("images"));
    Random content = new Random(3);
    for (String name : List.of("core-1.img", "pagemap-1.img", "pages-1.img", "inventory.img")) {
      byte[] bytes = new byte[4096 + content.nextInt(20000)];
      content.nextBytes(bytes);
      Files.write(images.resolve(name), bytes);
    }
    for (ArchiveCodec codec : ArchiveCodec.values()) {
      ByteArrayOutputStream stored = new ByteArrayOutputStream();
      ArchiveSummary summary = new ArchiveWriter().write(images, stored, codec);
      byte[] valid = stored.toByteArray();
      Mutator mutator = new Mutator(4 + codec.ordinal());
      int accepted = 0;
      for (int i = 0; i < CASES / 2; i++) {
        byte[] input = mutator.mutate(valid);
        if (Arrays.equals(input, valid)) {
          continue; // a bit flipped twice, a byte replaced by itself: nothing to refuse
        }
        Path target = dir.resolve("out-" + codec + "-" + i);
        boolean ok = within(() -> {
          try {
            new ArchiveReader().extract(new ByteArrayInputStream(input), target, codec, summary);
            return true;
          } catch (ArchiveIntegrityException expected) {
            assertThat(Files.exists(target) && Files.list(target).findAny().isPresent())
                .as("a refused archive leaves nothing extracted").isFalse();
            return false;
          }
        }, codec + " archive case " + i);
        if (ok) {
          accepted++;
          deleteTree(target);
        }
      }
      assertThat(accepted).as("only the unmodified bytes can match the recorded sha256").isZero();
    }
  }

  /** A kubelet's answers to a checkpoint request: whatever the status and body, a path or a KubeletException. */
  @Test
  void kubeletAnswers() throws Exception {
    byte[] valid = "{\"items\":[\"/var/lib/kubelet/checkpoints/checkpoint-web_jobs-app-2026-11-24T12:00:00Z.tar\"]}"
        .getBytes(StandardCharsets.UTF_8);
    int[] statuses = {200, 200, 200, 401, 403, 404, 500, 503};
    AtomicReference<byte[]> body = new AtomicReference<>();
    AtomicInteger status = new AtomicInteger();
    // Each answer in one write on a fresh connection: small writes would wait on delayed ACKs.
    try (ServerSocket kubelet = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
      Thread answering = new Thread(() -> {
        while (!kubelet.isClosed()) {
          try (Socket connection = kubelet.accept()) {
            InputStream request = connection.getInputStream();
            for (int matched = 0, b; matched < 4 && (b = request.read()) >= 0; ) {
              matched = b == "\r\n\r\n".charAt(matched) ? matched + 1 : (b == '\r' ? 1 : 0);
            }
            byte[] answer = body.get();
            ByteArrayOutputStream response = new ByteArrayOutputStream();
            response.writeBytes(("HTTP/1.1 " + status.get() + " X\r\nContent-Length: " + answer.length
                + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
            response.writeBytes(answer);
            connection.getOutputStream().write(response.toByteArray());
          } catch (IOException e) {
            // closed at the end, or the client gave up on this answer
          }
        }
      }, "fuzzed-kubelet");
      answering.setDaemon(true);
      answering.start();
      KubeletClient client = new KubeletClient(URI.create("http://127.0.0.1:" + kubelet.getLocalPort()),
          () -> "token", SSLContext.getDefault(), Duration.ofSeconds(2));
      Mutator mutator = new Mutator(7);
      for (int i = 0; i < CASES; i++) {
        body.set(mutator.mutate(valid));
        status.set(statuses[i % statuses.length]);
        int seedCase = i;
        within(() -> {
          try {
            assertThat(client.checkpoint("jobs", "web", "app", Duration.ofSeconds(1))).as("case %d", seedCase).isNotNull();
          } catch (KubeletException expected) {
            assertThat(expected.reason()).as("case %d", seedCase).isNotBlank();
            assertThat(expected.getMessage()).as("case %d", seedCase).isNotBlank();
          }
          return null;
        }, "kubelet answer case " + i);
      }
    }
  }

  private static <T> T within(Callable<T> check, String what) throws Exception {
    Future<T> result = RUNNER.submit(check);
    try {
      return result.get(PER_INPUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      result.cancel(true);
      return fail(what + " hung for more than " + PER_INPUT.toSeconds() + "s");
    } catch (java.util.concurrent.ExecutionException e) {
      throw new AssertionError(what + " failed with an unexpected " + e.getCause(), e.getCause());
    }
  }

  private static Manifest validManifest() {
    Manifest m = new Manifest();
    m.createdAt = "2026-11-24T12:00:00Z";
    m.source = new Manifest.Source();
    m.source.namespace = "jobs";
    m.source.checkpointName = "run42";
    m.source.checkpointUid = "0b5e7c1e-0000-4000-8000-000000000042";
    m.source.node = "node-a";
    m.source.pid = 4242;
    m.criu = new Manifest.Criu();
    m.criu.version = "4.2.1";
    m.criu.options = List.of("--leave-running");
    m.archive = new Manifest.Archive();
    m.archive.key = "jobs/run42-0b5e7c1e/archive.tar.zst";
    m.archive.codec = ArchiveCodec.ZSTD;
    m.archive.sizeBytes = 123456L;
    m.archive.storedBytes = 2345L;
    m.archive.sha256 = "ab".repeat(32);
    return m;
  }

  private static void deleteTree(Path root) throws IOException {
    try (var paths = Files.walk(root)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
