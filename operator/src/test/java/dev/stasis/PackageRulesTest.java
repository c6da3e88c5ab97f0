package dev.stasis;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.belongToAnyOf;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAPackage;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.resideInAnyPackage;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import dev.stasis.api.Checkpoint;
import dev.stasis.storage.LeakyStoreForPackageRules;
import io.fabric8.kubernetes.client.CustomResource;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The package map of docs/packages.md, as rules over the compiled classes: which of our packages
 * each package may use. A change that makes a leaf package import ours, or the operator and the
 * agent import each other, fails here instead of drifting from the map.
 */
class PackageRulesTest {
  /** Each package of ours and the packages of ours it may use; nothing else of ours. */
  static final Map<String, Set<String>> MAP = new LinkedHashMap<>();

  static {
    MAP.put("api", Set.of());
    MAP.put("disk", Set.of());
    MAP.put("criu", Set.of("disk"));
    MAP.put("kubelet", Set.of());
    MAP.put("archive", Set.of());
    MAP.put("storage", Set.of());
    MAP.put("image", Set.of("archive"));
    MAP.put("tls", Set.of());
    MAP.put("metrics", Set.of("api", "archive", "storage"));
    MAP.put("kube", Set.of("api", "archive", "storage", "image", "tls"));
    MAP.put("operator", Set.of("api", "kube", "metrics", "archive", "storage", "image", "criu"));
    MAP.put("agent", Set.of("api", "kube", "metrics", "archive", "storage", "image", "criu", "kubelet", "tls", "disk"));
    MAP.put("cli", Set.of("api", "kube", "metrics", "archive", "storage", "image", "criu", "kubelet", "tls", "disk",
        "operator", "agent"));
  }

  static JavaClasses main;

  @BeforeAll
  static void importMainClasses() {
    main = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
        .importPackages("dev.stasis");
  }

  @Test
  void everyPackageUsesOnlyWhatTheMapAllows() {
    mapRules().forEach(rule -> rule.check(main));
  }

  @Test
  void theMapNamesEveryPackage() {
    List<String> unmapped = main.stream().map(c -> c.getPackageName())
        .filter(p -> p.startsWith("dev.stasis.")).map(p -> p.substring("dev.stasis.".length()).split("\\.")[0])
        .distinct().filter(p -> !MAP.containsKey(p)).toList();
    assertThat(unmapped).as("packages missing from the map (and from docs/packages.md)").isEmpty();
  }

  @Test
  void theOperatorAndTheAgentNeverUseEachOther() {
    noClasses().that().resideInAPackage("dev.stasis.operator..")
        .should().dependOnClassesThat().resideInAPackage("dev.stasis.agent..")
        .because("the operator never touches a node; what both need lives in kube").check(main);
    noClasses().that().resideInAPackage("dev.stasis.agent..")
        .should().dependOnClassesThat().resideInAPackage("dev.stasis.operator..")
        .because("the agent only does the work the operator assigned; what both need lives in kube").check(main);
  }

  /**
   * The agent by job (docs/packages.md): a checkpoint job and a restore job never reach into each
   * other, and what they share (the node's work and folders, processes, the node profile) knows neither.
   */
  @Test
  void theAgentsJobsStayApart() {
    noClasses().that().resideInAPackage("dev.stasis.agent.checkpoint..")
        .should().dependOnClassesThat().resideInAPackage("dev.stasis.agent.restore..")
        .because("what checkpoint and restore share lives in agent.work, agent.process or agent.profile").check(main);
    noClasses().that().resideInAPackage("dev.stasis.agent.restore..")
        .should().dependOnClassesThat().resideInAPackage("dev.stasis.agent.checkpoint..")
        .because("what checkpoint and restore share lives in agent.work, agent.process or agent.profile").check(main);
    noClasses().that().resideInAnyPackage("dev.stasis.agent", "dev.stasis.agent.work..", "dev.stasis.agent.process..",
            "dev.stasis.agent.profile..")
        .should().dependOnClassesThat().resideInAnyPackage("dev.stasis.agent.checkpoint..", "dev.stasis.agent.restore..")
        .because("the shared parts of the agent serve every job and know none of them").check(main);
  }

  /** The API classes are what is stored in etcd: data and its defaults, no clients, no reconciling. */
  @Test
  void theApiHoldsNoReconcilerBehaviour() {
    classes().that().resideInAPackage("dev.stasis.api..")
        .should().onlyDependOnClassesThat(resideInAnyPackage("dev.stasis.api..", "java..",
            "com.fasterxml.jackson.annotation..", "io.fabric8.kubernetes.api.model..",
            "io.fabric8.kubernetes.model.annotation..", "io.fabric8.generator.annotation..",
            "io.fabric8.crd.generator.annotation..").or(belongToAnyOf(CustomResource.class)))
        .because("statuses are moved by the lifecycles in kube, and reconciling is the operator's and the agent's")
        .check(main);
  }

  @Test
  void noPackagesDependOnEachOtherInACircle() {
    slices().matching("dev.stasis.(*)..").should().beFreeOfCycles().check(main);
    slices().matching("dev.stasis.(**)").should().beFreeOfCycles().check(main);
  }

  /** The rules catch what they are for: a storage class that used a Kubernetes type of ours. */
  @Test
  void aLeafPackageThatImportsOursFailsTheRules() {
    JavaClasses withLeak = new ClassFileImporter().importClasses(LeakyStoreForPackageRules.class,
        Checkpoint.class);
    assertThatThrownBy(() -> mapRules().forEach(rule -> rule.check(withLeak)))
        .isInstanceOf(AssertionError.class).hasMessageContaining("dev.stasis.storage.LeakyStoreForPackageRules")
        .hasMessageContaining("dev.stasis.api.Checkpoint");
  }

  static List<ArchRule> mapRules() {
    List<ArchRule> rules = new ArrayList<>();
    MAP.forEach((pkg, allowed) -> {
      List<String> ours = new ArrayList<>();
      ours.add("dev.stasis." + pkg + "..");
      allowed.forEach(a -> ours.add("dev.stasis." + a + ".."));
      rules.add(noClasses().that().resideInAPackage("dev.stasis." + pkg + "..")
          .should().dependOnClassesThat(resideInAPackage("dev.stasis..")
              .and(not(resideInAnyPackage(ours.toArray(String[]::new)))))
          .as("dev.stasis." + pkg + " uses only " + (allowed.isEmpty() ? "nothing of ours" : String.join(", ", allowed)))
          .allowEmptyShould(true));
    });
    return rules;
  }
}
