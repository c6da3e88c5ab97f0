package dev.stasis.image;

import java.net.URI;
import javax.net.ssl.SSLContext;

/**
 * Where checkpoint images go: a registry (scheme, host and port), the repository prefix under it,
 * the credentials to push with (null for none) and whom to trust.
 *
 * @param base e.g. https://registry.example.com:5000
 * @param prefix repository prefix without slashes at either end, e.g. "stasis"; may be empty
 */
public record Registry(URI base, String prefix, String username, String password, SSLContext tls) {

  /** Parses a url such as https://registry.example.com/stasis into base and prefix. */
  public static Registry of(String url, String username, String password, SSLContext tls) {
    URI uri = URI.create(url);
    String path = uri.getPath() == null ? "" : uri.getPath().replaceAll("^/+|/+$", "");
    return new Registry(URI.create(uri.getScheme() + "://" + uri.getRawAuthority()), path, username, password, tls);
  }

  /** The registry's host (and port) as image references name it. */
  public String host() {
    return base.getRawAuthority();
  }

  public String repository(String... parts) {
    String joined = String.join("/", parts);
    return prefix.isEmpty() ? joined : prefix + "/" + joined;
  }
}
