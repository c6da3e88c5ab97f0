package dev.stasis.storage;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import software.amazon.awssdk.http.SdkHttpRequest;
import software.amazon.awssdk.http.auth.aws.scheme.AwsV4AuthScheme;
import software.amazon.awssdk.http.auth.aws.signer.AwsV4HttpSigner;
import software.amazon.awssdk.http.auth.spi.scheme.AuthSchemeOption;
import software.amazon.awssdk.http.auth.spi.signer.AsyncSignRequest;
import software.amazon.awssdk.http.auth.spi.signer.AsyncSignedRequest;
import software.amazon.awssdk.http.auth.spi.signer.SignRequest;
import software.amazon.awssdk.http.auth.spi.signer.SignedRequest;
import software.amazon.awssdk.http.auth.spi.signer.SignerProperty;
import software.amazon.awssdk.identity.spi.AwsCredentialsIdentity;
import software.amazon.awssdk.identity.spi.IdentityProvider;
import software.amazon.awssdk.identity.spi.IdentityProviders;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.auth.scheme.S3AuthSchemeParams;
import software.amazon.awssdk.services.s3.auth.scheme.S3AuthSchemeProvider;

/**
 * Sends the parts of an archive with SigV4's {@code UNSIGNED-PAYLOAD} over plain HTTP too, as the
 * SDK already does over TLS. Over HTTP the SDK otherwise hashes every part's bytes for the
 * signature and the server hashes them again to check it: a second sha256 of the whole archive on
 * each side, which the archive does not need, since it carries its own sha256 (recorded in etcd)
 * and every restore checks it before CRIU sees a byte. S3 and the S3-compatible servers accept
 * unsigned payloads on either scheme; the request line and headers stay signed.
 *
 * <p>Only {@code UploadPart} goes unsigned. Every other request, manifests and the single
 * PutObject of an archive smaller than one part included, is signed whole as before.
 */
final class UnsignedPartPayload {
  /** Set on the auth scheme options of the operations whose payload goes unsigned. */
  static final SignerProperty<Boolean> UNSIGNED =
      SignerProperty.create(UnsignedPartPayload.class, "UnsignedOverHttp");
  private static final String UNSIGNED_OPERATION = "UploadPart";
  private static final int HTTP_PORT = 80;
  private static final int HTTPS_PORT = 443;

  private UnsignedPartPayload() {}

  /** Makes {@code builder}'s client send part payloads unsigned, whatever the scheme. */
  static S3ClientBuilder configure(S3ClientBuilder builder) {
    S3AuthSchemeProvider defaults = S3AuthSchemeProvider.defaultProvider();
    AwsV4AuthScheme sigv4 = AwsV4AuthScheme.create();
    AwsV4HttpSigner signer = new Signer(sigv4.signer());
    return builder
        .authSchemeProvider(params -> markUnsigned(params, defaults.resolveAuthScheme(params)))
        .putAuthScheme(new AwsV4AuthScheme() {
          @Override
          public String schemeId() {
            return sigv4.schemeId();
          }

          @Override
          public IdentityProvider<AwsCredentialsIdentity> identityProvider(IdentityProviders providers) {
            return sigv4.identityProvider(providers);
          }

          @Override
          public AwsV4HttpSigner signer() {
            return signer;
          }
        });
  }

  static List<AuthSchemeOption> markUnsigned(S3AuthSchemeParams params, List<AuthSchemeOption> options) {
    if (!UNSIGNED_OPERATION.equals(params.operation())) {
      return options;
    }
    return options.stream().map(option -> option.toBuilder().putSignerProperty(UNSIGNED, true).build()).toList();
  }

  /**
   * The SDK's SigV4 signer, which signs payloads over HTTP even when told not to. For a request
   * marked {@link #UNSIGNED} it signs as for TLS (the scheme is not part of the signature; the
   * Host header is, so a default port stays a default port) and gives the request its scheme back.
   */
  static final class Signer implements AwsV4HttpSigner {
    private final AwsV4HttpSigner sdk;

    Signer(AwsV4HttpSigner sdk) {
      this.sdk = sdk;
    }

    @Override
    public SignedRequest sign(SignRequest<? extends AwsCredentialsIdentity> request) {
      SdkHttpRequest http = request.request();
      if (!Boolean.TRUE.equals(request.property(UNSIGNED)) || !"http".equals(http.protocol())) {
        return sdk.sign(request);
      }
      SdkHttpRequest.Builder asTls = http.toBuilder().protocol("https");
      if (http.port() == HTTP_PORT) {
        asTls.port(HTTPS_PORT);
      }
      SignedRequest signed = sdk.sign(request.copy(b -> b.request(asTls.build())
          .putProperty(AwsV4HttpSigner.PAYLOAD_SIGNING_ENABLED, false)));
      return signed.copy(b -> b.request(signed.request().toBuilder().protocol(http.protocol()).port(http.port())
          .build()));
    }

    /** The agent's client is synchronous; an async one keeps the SDK's behaviour. */
    @Override
    public CompletableFuture<AsyncSignedRequest> signAsync(AsyncSignRequest<? extends AwsCredentialsIdentity> request) {
      return sdk.signAsync(request);
    }
  }
}
