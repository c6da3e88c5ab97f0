package dev.stasis.agent;

/**
 * How much of a job's tmpfs files one process checkpoint may carry ({@link TravellingFiles}):
 * beyond either limit the checkpoint is refused (TravellingFilesTooLarge) and the job goes on.
 * Set by the agent's --travelling-files-max-count and --travelling-files-max-bytes.
 */
public record TravellingFileLimits(int maxFiles, long maxBytes) {
  /** OpenMPI's shared-memory segments are a few MiB per rank: room for a node's ranks and their scratch files. */
  public static final int DEFAULT_MAX_FILES = 256;
  public static final long DEFAULT_MAX_BYTES = 1L << 30;
  public static final TravellingFileLimits DEFAULT = new TravellingFileLimits(DEFAULT_MAX_FILES, DEFAULT_MAX_BYTES);

  public TravellingFileLimits {
    if (maxFiles < 0 || maxBytes < 0) {
      throw new IllegalArgumentException("travelling file limits cannot be negative: " + maxFiles + " files, "
          + maxBytes + " bytes");
    }
  }
}
