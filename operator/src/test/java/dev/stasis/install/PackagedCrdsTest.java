package dev.stasis.install;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The Helm chart and the kustomize config install exactly the CRDs in crds/ (`make crds` copies them). */
class PackagedCrdsTest {
  private static final Path CRDS = Path.of("../crds");

  @ParameterizedTest
  @ValueSource(strings = {"../charts/stasis/crds", "../config/crd"})
  void copiesAreIdenticalToCrds(String copies) throws IOException {
    Path dir = Path.of(copies);
    assertThat(names(dir)).as("CRD files in %s", dir).isEqualTo(names(CRDS));
    for (String name : names(CRDS)) {
      assertThat(Files.readString(dir.resolve(name)))
          .as("%s/%s differs from crds/%s: run `make crds`", dir, name, name)
          .isEqualTo(Files.readString(CRDS.resolve(name)));
    }
  }

  private static List<String> names(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".yml")).sorted().toList();
    }
  }
}
