package dev.stasis.testing;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

/**
 * A certificate authority made for one test with openssl, and server certificates it signs for
 * 127.0.0.1, so that tests run TLS servers a client can verify for real (and fail to verify
 * with another CA).
 */
public final class TestCa {
  private static final String PASSWORD = "stasis-test";

  private final Path dir;
  private final Path cert;
  private final Path key;

  private TestCa(Path dir, Path cert, Path key) {
    this.dir = dir;
    this.cert = cert;
    this.key = key;
  }

  public static TestCa create(Path dir, String name) throws IOException, InterruptedException {
    Files.createDirectories(dir);
    Path cert = dir.resolve(name + "-ca.crt");
    Path key = dir.resolve(name + "-ca.key");
    openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.toString(), "-out", cert.toString(),
        "-days", "2", "-subj", "/CN=" + name + " test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign");
    return new TestCa(dir, cert, key);
  }

  /** The CA certificate (PEM), as a client is given it to trust. */
  public Path certificate() {
    return cert;
  }

  /** A serving certificate for 127.0.0.1 and localhost signed by this CA. */
  public ServerCertificate issue(String name) throws IOException, InterruptedException {
    Path serverKey = dir.resolve(name + ".key");
    Path csr = dir.resolve(name + ".csr");
    Path serverCert = dir.resolve(name + ".crt");
    Path ext = dir.resolve(name + ".ext");
    Files.writeString(ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", serverKey.toString(), "-out", csr.toString(),
        "-subj", "/CN=" + name);
    openssl(dir, "x509", "-req", "-in", csr.toString(), "-CA", cert.toString(), "-CAkey", key.toString(),
        "-CAcreateserial", "-out", serverCert.toString(), "-days", "2", "-extfile", ext.toString());
    Path p12 = dir.resolve(name + ".p12");
    openssl(dir, "pkcs12", "-export", "-in", serverCert.toString(), "-inkey", serverKey.toString(),
        "-certfile", cert.toString(), "-out", p12.toString(), "-passout", "pass:" + PASSWORD);
    return new ServerCertificate(serverCert, serverKey, p12);
  }

  /** A server certificate as PEM files (for other programs) and as a PKCS#12 key store (for Java servers). */
  public record ServerCertificate(Path certificate, Path key, Path pkcs12) {
    public SSLContext serverContext() throws Exception {
      KeyStore store = KeyStore.getInstance("PKCS12");
      try (InputStream in = Files.newInputStream(pkcs12)) {
        store.load(in, PASSWORD.toCharArray());
      }
      KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      keys.init(store, PASSWORD.toCharArray());
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(keys.getKeyManagers(), null, null);
      return context;
    }
  }

  private static void openssl(Path dir, String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of("openssl"));
    command.addAll(List.of(args));
    Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new IOException("openssl " + String.join(" ", args) + " failed:\n" + output);
    }
  }
}
