package dev.stasis.testing;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.ConfigBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;

/** Clients that act as a ServiceAccount of stasis-system, with tokens the API server issues. */
public final class ServiceAccounts {
  public static final String NAMESPACE = "stasis-system";

  private ServiceAccounts() {}

  /** A token bound to {@code boundTo} (a Node or a Pod, as the kubelet's projected tokens are), or unbound if null. */
  public static String token(KubernetesClient admin, String serviceAccount, HasMetadata boundTo) {
    var request = new TokenRequestBuilder().withNewSpec().withExpirationSeconds(3600L);
    if (boundTo != null) {
      request = request.withNewBoundObjectRef().withApiVersion("v1").withKind(boundTo.getKind())
          .withName(boundTo.getMetadata().getName()).withUid(boundTo.getMetadata().getUid()).endBoundObjectRef();
    }
    return admin.serviceAccounts().inNamespace(NAMESPACE).withName(serviceAccount)
        .tokenRequest(request.endSpec().build()).getStatus().getToken();
  }

  public static KubernetesClient clientWithToken(KubernetesClient admin, String token) {
    Config adminConfig = admin.getConfiguration();
    Config config = new ConfigBuilder(Config.empty())
        .withMasterUrl(adminConfig.getMasterUrl())
        .withCaCertData(adminConfig.getCaCertData())
        .withCaCertFile(adminConfig.getCaCertFile())
        .withOauthToken(token)
        // as in a pod of the account, whose client takes the namespace from the mounted token's
        .withNamespace(NAMESPACE)
        .build();
    return new KubernetesClientBuilder().withConfig(config).build();
  }
}
