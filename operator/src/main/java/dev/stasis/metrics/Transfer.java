package dev.stasis.metrics;

/** Receives how many bytes one upload or download moved, and in how many nanoseconds. */
@FunctionalInterface
interface Transfer {
  void finished(long bytes, long nanos);
}
