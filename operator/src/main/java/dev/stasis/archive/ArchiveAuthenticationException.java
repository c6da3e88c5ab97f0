package dev.stasis.archive;

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
}
