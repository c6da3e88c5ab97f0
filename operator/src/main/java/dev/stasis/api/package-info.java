/**
 * The Stasis API ({@code stasis.dev/v1alpha1}): custom resource classes and their spec/status POJOs.
 * The CRD YAML in {@code crds/} is generated from these classes at build time.
 */
package dev.stasis.api;
