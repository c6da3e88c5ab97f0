package dev.stasis.archive;

/**
 * What {@link ArchiveWriter} wrote, as recorded in the manifest.
 *
 * @param sizeBytes bytes of the tar stream before compression
 * @param storedBytes bytes written to the destination (after compression)
 * @param sha256 lowercase hex sha256 of the stored bytes
 */
public record ArchiveSummary(long sizeBytes, long storedBytes, String sha256) {}
