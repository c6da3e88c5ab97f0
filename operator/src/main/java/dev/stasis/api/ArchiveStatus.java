package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;

@JsonInclude(JsonInclude.Include.NON_NULL)
public class ArchiveStatus {
  /** Where the archive lives, e.g. s3://bucket/prefix/ns/name-uid/archive.tar.zst. */
  public String uri;
  /** Bytes of checkpoint data before compression. */
  public Long sizeBytes;
  /** Bytes actually stored (after compression). */
  public Long storedBytes;
  /** sha256 of the stored bytes, hex. */
  public String sha256;
  /**
   * sha256 of the manifest stored next to the archive, hex. Every reader checks the manifest
   * against it before using it: what the storage returns is trusted only as far as this says.
   */
  public String manifestSha256;
}
