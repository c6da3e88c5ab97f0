package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class ArchiveStatus {
  /** Where the archive lives, e.g. s3://bucket/prefix/ns/name-uid/archive.tar.zst. */
  public String uri;
  /** Bytes of checkpoint data before compression (deduplicated: the archive's and the memory images'). */
  public Long sizeBytes;
  /** Bytes of the archive object (after compression); a deduplicated checkpoint's memory is in chunks besides it. */
  public Long storedBytes;
  /**
   * Bytes this checkpoint added to storage: its archive, and for a deduplicated checkpoint its
   * chunk index and the chunks no earlier checkpoint of the namespace had stored.
   */
  public Long newBytes;
  /** sha256 of the stored bytes, hex. */
  public String sha256;
  /**
   * sha256 of the manifest stored next to the archive, hex. Every reader checks the manifest
   * against it before using it: what the storage returns is trusted only as far as this says.
   */
  public String manifestSha256;
}
