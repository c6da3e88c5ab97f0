package dev.stasis.cli;

import dev.stasis.image.ImageLayout;
import dev.stasis.image.Registry;
import dev.stasis.image.RegistryClient;
import dev.stasis.image.RegistryException;
import dev.stasis.tls.TlsTrust;
import java.nio.file.Path;

/**
 * Pushes the images of an OCI image layout to a registry: the last step of images/build.sh, with the
 * registry client the agent pushes checkpoint images with. Not one of stasis' commands: the build
 * runs it as {@code java -cp stasis.jar dev.stasis.cli.PushImages LAYOUT URL}.
 *
 * <p>URL is the registry and a repository prefix, e.g. {@code http://127.0.0.1:5000} or
 * {@code https://registry.example.com/stasis}; each image goes to {@code <prefix>/<name>:<tag>}.
 * Credentials, if the registry asks for them: STASIS_REGISTRY_USERNAME and STASIS_REGISTRY_PASSWORD.
 * Prints one line per image: {@code <name> <host>/<repository>:<tag>@<digest>}.
 */
public final class PushImages {
  private PushImages() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 2) {
      System.err.println("usage: PushImages LAYOUT URL   (URL: http://127.0.0.1:5000 or https://registry.example.com/stasis)");
      System.exit(2);
    }
    ImageLayout layout = ImageLayout.at(Path.of(args[0]));
    Registry registry = Registry.of(args[1], System.getenv("STASIS_REGISTRY_USERNAME"),
        System.getenv("STASIS_REGISTRY_PASSWORD"), TlsTrust.system());
    for (ImageLayout.Image image : layout.images()) {
      String repository = registry.repository(image.name());
      try {
        String digest = layout.push(image, RegistryClient.open(registry, repository));
        System.out.println(image.name() + " " + registry.host() + "/" + repository + ":" + image.tag() + "@" + digest);
      } catch (RegistryException e) {
        System.err.println("pushing " + image.name() + " to " + args[1] + " failed (" + e.reason() + "): " + e.getMessage());
        System.exit(1);
      }
    }
  }
}
