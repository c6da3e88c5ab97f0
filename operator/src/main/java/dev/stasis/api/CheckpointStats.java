package dev.stasis.api;

import com.fasterxml.jackson.annotation.JsonInclude;

/** CRIU's own dump statistics (its stats-dump image), plus Stasis' upload timing. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public class CheckpointStats {
  public Long freezingTimeMicros;
  /** How long the workload was frozen. */
  public Long frozenTimeMicros;
  public Long memoryDumpTimeMicros;
  public Long memoryWriteTimeMicros;
  public Long pagesScanned;
  public Long pagesWritten;
  /** Wall time from the agent starting CRIU to the manifest being committed. */
  public Long totalTimeMillis;
}
