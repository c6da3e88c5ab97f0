package dev.stasis.archive;

import java.io.IOException;

/** A manifest cannot be used: not JSON, missing what a restore needs, or a format this build does not know. */
public class ManifestException extends IOException {
  public ManifestException(String message) {
    super(message);
  }

  public ManifestException(String message, Throwable cause) {
    super(message, cause);
  }
}
