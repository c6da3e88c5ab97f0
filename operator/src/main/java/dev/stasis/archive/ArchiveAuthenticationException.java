package dev.stasis.archive;

import java.util.Optional;

/**
 * Encrypted archive bytes fail their authentication: they were altered, cut short, reordered, or
 * encrypted with another key than the one tried. Nothing of such a segment is ever handed on.
 */
public class ArchiveAuthenticationException extends ArchiveIntegrityException {
  public ArchiveAuthenticationException(String message) {
    super(message);
  }

  public ArchiveAuthenticationException(String message, Throwable cause) {
    super(message, cause);
  }

  /** The authentication failure behind {@code failure}, which decompressors and HTTP clients may have wrapped. */
  public static Optional<ArchiveAuthenticationException> causing(Throwable failure) {
    for (Throwable t = failure; t != null; t = t.getCause()) {
      if (t instanceof ArchiveAuthenticationException notAuthentic) {
        return Optional.of(notAuthentic);
      }
    }
    return Optional.empty();
  }
}
