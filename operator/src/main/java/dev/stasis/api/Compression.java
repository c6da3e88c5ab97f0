package dev.stasis.api;

public enum Compression {
  zstd,
  none
}
