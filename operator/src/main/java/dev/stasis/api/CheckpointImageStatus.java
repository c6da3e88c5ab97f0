package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;

/** A checkpoint OCI image pushed for one container of a restored pod. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointImageStatus {
  public String container;
  /** The image by digest, e.g. registry.example.com/stasis/jobs/sim@sha256:…. */
  public String image;

  public CheckpointImageStatus() {}

  public CheckpointImageStatus(String container, String image) {
    this.container = container;
    this.image = image;
  }
}
