/**
 * Deduplicated archives (issue 18, docs/dedup.md): memory images cut into chunks whose boundaries
 * survive memory inserted or removed elsewhere, keyed chunk names that say nothing about the
 * bytes and are never shared across namespaces, and the chunk index that lists a checkpoint's chunks.
 */
package dev.stasis.archive.dedup;
