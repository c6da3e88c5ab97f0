/**
 * Deduplicated archives (issue 18, docs/dedup.md): memory images cut into chunks whose boundaries
 * survive memory inserted or removed elsewhere, and keyed chunk names that say nothing about the
 * bytes and are never shared across namespaces. Not yet used by the archive writer or reader.
 */
package dev.stasis.archive.dedup;
