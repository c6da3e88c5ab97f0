package dev.stasis.api;

/** How closely the restoring node must resemble the checkpoint's source node. */
public enum Compatibility {
  /** Same architecture, every CPU flag of the source, CRIU at least the source's, same runtime. */
  Compatible,
  /** Compatible, and also the same CPU model, kernel release, OS and CRIU features. */
  Strict
}
