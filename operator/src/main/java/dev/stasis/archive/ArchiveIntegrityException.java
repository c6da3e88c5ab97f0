package dev.stasis.archive;

import java.io.IOException;

/**
 * A stored archive cannot be trusted: its bytes differ from what the manifest recorded, it does not
 * decode, or it holds entries that must not be extracted. Retrying will not help; another
 * checkpoint might.
 */
public class ArchiveIntegrityException extends IOException {
  public ArchiveIntegrityException(String message) {
    super(message);
  }

  public ArchiveIntegrityException(String message, Throwable cause) {
    super(message, cause);
  }
}
