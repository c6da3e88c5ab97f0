package dev.stasis.storage;

import java.io.IOException;

/** The storage cannot be used; the message says what is wrong in words a person can act on. */
public class StorageUnavailableException extends IOException {
  public StorageUnavailableException(String message) {
    super(message);
  }

  public StorageUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
