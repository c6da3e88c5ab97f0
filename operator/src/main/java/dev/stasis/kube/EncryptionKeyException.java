package dev.stasis.kube;

import dev.stasis.storage.StorageUnavailableException;

/** A storage's encryption keys cannot be used: the Secret is missing, or a key in it is not a valid key. */
public class EncryptionKeyException extends StorageUnavailableException {
  /** The reason a storage, Checkpoint or Restore shows for it. */
  public static final String REASON = "EncryptionKeyUnavailable";

  public EncryptionKeyException(String message) {
    super(message);
  }

  public EncryptionKeyException(String message, Throwable cause) {
    super(message, cause);
  }
}
