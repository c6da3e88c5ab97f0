package dev.stasis.agent.restore;

import dev.stasis.agent.WorkFailure;
import dev.stasis.agent.profile.RuntimeProbe;
import dev.stasis.agent.profile.RuntimeVersion;
import dev.stasis.api.NodeProfileSpec;
import dev.stasis.archive.Manifest;
import dev.stasis.image.Registry;
import dev.stasis.image.RegistryClient;
import dev.stasis.image.RegistryException;
import dev.stasis.tls.TlsTrust;
import io.fabric8.kubernetes.api.model.ContainerImage;
import io.fabric8.kubernetes.api.model.Node;
import java.util.List;
import java.util.Optional;

/**
 * Whether containerd on this node can get the image a pod checkpoint was based on: it pulls it
 * again by its reference when it restores the container (by digest, with no credentials, the pod's
 * imagePullSecrets and the node's hosts.toml mirrors left aside), unless the node has it under that
 * very reference (containerd 2.2 and later look there first). Checked before anything is pushed, so
 * that a restore that cannot work says so at once. CRI-O restores on the base image it has, by its
 * ID, and pulls nothing: nothing to check.
 */
final class BaseImages {
  /** The kubelet reports this many images of a node at most (nodeStatusMaxImages' default). */
  private static final int REPORTED_IMAGES = 50;
  private static final RuntimeVersion CONTAINERD_LOOKS_FIRST = RuntimeVersion.of(2, 2, 0);

  private BaseImages() {}

  /**
   * Nothing when the image can be had; a warning when the agent could not tell (the registry is out
   * of its reach, or the node lists too many images to be sure it lacks it).
   *
   * @throws WorkFailure BaseImageUnavailable, when neither the node nor its registry has it for containerd
   */
  static Optional<String> check(Manifest manifest, NodeProfileSpec.RuntimeInfo runtime, Node node) throws WorkFailure {
    if (runtime == null || !RuntimeProbe.CONTAINERD.equals(runtime.name)) {
      return Optional.empty();
    }
    String reference = manifest.source.rootfsImageRef != null ? manifest.source.rootfsImageRef
        : manifest.source.containerImage;
    if (reference == null) {
      return Optional.empty();
    }
    RuntimeVersion version = RuntimeVersion.parse(runtime.version);
    List<ContainerImage> images = node == null || node.getStatus() == null || node.getStatus().getImages() == null
        ? List.of() : node.getStatus().getImages();
    boolean looksFirst = version != null && !version.isBefore(CONTAINERD_LOOKS_FIRST);
    if (looksFirst && images.stream().anyMatch(i -> i.getNames() != null && i.getNames().contains(reference))) {
      return Optional.empty();
    }
    ImageReference image = ImageReference.parse(reference);
    String answer;
    try {
      if (RegistryClient.open(Registry.of(image.registryUrl(), null, null, TlsTrust.system()), image.repository())
          .hasManifest(image.tagOrDigest())) {
        return Optional.empty();
      }
      answer = "it answers that it has no such image";
    } catch (RegistryException e) {
      if (!e.reason().equals("RegistryUnauthorized")) {
        return Optional.of("cannot tell whether containerd can pull " + reference + ", the image the checkpoint was"
            + " based on, which it pulls again when it restores: " + e.getMessage());
      }
      answer = "it asks for credentials, and containerd pulls the image without any";
    }
    String lacks = looksFirst ? "node " + (node == null ? "" : node.getMetadata().getName() + " ") + "does not have it"
        : "containerd " + runtime.version + " pulls it even when the node has it";
    if (looksFirst && images.size() >= REPORTED_IMAGES) {
      return Optional.of("containerd may not be able to pull " + reference + ", the image the checkpoint was based on: "
          + answer + " (" + image.registryUrl() + "), and the node lists too many images to tell whether it has it");
    }
    throw new WorkFailure("BaseImageUnavailable", "containerd restores the container on the image the checkpoint was"
        + " based on, " + reference + ", and pulls it again by that reference, without credentials; its registry ("
        + image.registryUrl() + ") cannot give it: " + answer + ", and " + lacks + ". Nothing was pushed. Make the"
        + " image pullable there again (the same digest), or restore a checkpoint of a pod whose image still is");
  }

  /**
   * An image reference as container runtimes read it: a registry host (docker.io when the first
   * part names none), a repository, and a tag or digest. Plain HTTP for localhost only, as
   * containerd's default resolver.
   */
  record ImageReference(String host, String repository, String tagOrDigest) {
    static ImageReference parse(String reference) {
      String name = reference;
      String version = "latest";
      int at = name.indexOf('@');
      if (at >= 0) {
        version = name.substring(at + 1);
        name = name.substring(0, at);
      } else {
        int colon = name.lastIndexOf(':');
        if (colon > name.lastIndexOf('/')) {
          version = name.substring(colon + 1);
          name = name.substring(0, colon);
        }
      }
      int slash = name.indexOf('/');
      String first = slash < 0 ? "" : name.substring(0, slash);
      boolean hasHost = first.contains(".") || first.contains(":") || first.equals("localhost");
      String host = hasHost ? first : "docker.io";
      String repository = hasHost ? name.substring(slash + 1) : name;
      if (host.equals("docker.io") && !repository.contains("/")) {
        repository = "library/" + repository;
      }
      return new ImageReference(host, repository, version);
    }

    String registryUrl() {
      String hostname = host.startsWith("[") ? host.substring(0, host.indexOf(']') + 1) : host.replaceFirst(":\\d+$", "");
      boolean local = hostname.equals("localhost") || hostname.startsWith("127.") || hostname.equals("[::1]");
      return (local ? "http://" : "https://") + (host.equals("docker.io") ? "registry-1.docker.io" : host);
    }
  }
}
