package dev.stasis.kube;

import dev.stasis.testing.TestStorage;
import java.nio.file.Path;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.stasis.api.NodeProfile;
import dev.stasis.api.NodeProfileSpec;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The operator's cache of cluster-scoped objects: fast when it knows, never wrong when it does not. */
@EnableKubernetesMockClient(crud = true)
class ClusterCacheTest {
  KubernetesClient client;
  KubernetesMockServer server;

  @Test
  void answersFromMemoryOnceItHasSeenTheObjects() {
    nodeProfile("node-a");
    storage("store");
    ClusterCache cache = ClusterCache.watching(client);
    await().atMost(Duration.ofSeconds(10)).until(cache::synced);
    int before = server.getRequestCount();
    for (int i = 0; i < 100; i++) {
      assertThat(cache.nodeProfile("node-a")).isNotNull();
      assertThat(cache.storage("store")).isNotNull();
      assertThat(cache.nodeProfiles()).hasSize(1);
      assertThat(cache.storages(false)).hasSize(1);
    }
    assertThat(server.getRequestCount()).as("requests for 400 lookups").isEqualTo(before);
  }

  @Test
  void findsWhatWasCreatedAMomentAgoByAskingTheApiServer() {
    ClusterCache cache = ClusterCache.watching(client);
    nodeProfile("node-new");
    storage("store-new");
    // whether or not the watch delivered them yet, a lookup must not say they do not exist
    assertThat(cache.nodeProfile("node-new")).isNotNull();
    assertThat(cache.storage("store-new")).isNotNull();
    assertThat(cache.storages(true)).extracting(s -> s.getMetadata().getName()).contains("store-new");
    assertThat(cache.nodeProfile("node-missing")).isNull();
  }

  private void nodeProfile(String name) {
    NodeProfile profile = new NodeProfile();
    profile.setMetadata(new ObjectMetaBuilder().withName(name).build());
    profile.setSpec(new NodeProfileSpec());
    client.resource(profile).create();
  }

  private void storage(String name) {
    TestStorage.filesystem(name, Path.of("/tmp", name)).create(client);
  }
}
