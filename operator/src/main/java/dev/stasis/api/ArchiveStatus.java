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
}
