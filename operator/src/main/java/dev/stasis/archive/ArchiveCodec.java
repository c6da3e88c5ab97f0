package dev.stasis.archive;

import com.fasterxml.jackson.annotation.JsonProperty;

/** How the tar stream of a checkpoint is compressed before it is stored. */
public enum ArchiveCodec {
  @JsonProperty("zstd")
  ZSTD("archive.tar.zst"),
  @JsonProperty("none")
  NONE("archive.tar");

  private final String fileName;

  ArchiveCodec(String fileName) {
    this.fileName = fileName;
  }

  /** The archive object's file name, whose extension tells tools such as {@code tar} how to read it. */
  public String fileName() {
    return fileName;
  }
}
