package dev.stasis.storage;

import static org.assertj.core.api.Assertions.assertThat;

import dev.stasis.archive.Sha256;
import java.io.ByteArrayInputStream;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import software.amazon.awssdk.http.ContentStreamProvider;
import software.amazon.awssdk.http.SdkHttpFullRequest;
import software.amazon.awssdk.http.SdkHttpMethod;
import software.amazon.awssdk.http.SdkHttpRequest;
import software.amazon.awssdk.http.auth.aws.signer.AwsV4HttpSigner;
import software.amazon.awssdk.http.auth.spi.signer.SignRequest;
import software.amazon.awssdk.http.auth.spi.signer.SignedRequest;
import software.amazon.awssdk.http.auth.spi.scheme.AuthSchemeOption;
import software.amazon.awssdk.identity.spi.AwsCredentialsIdentity;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.auth.scheme.S3AuthSchemeParams;
import software.amazon.awssdk.services.s3.auth.scheme.S3AuthSchemeProvider;

class UnsignedPartPayloadTest {
  private static final byte[] PART = "the bytes of one part of an archive".getBytes();
  private static final Clock CLOCK = Clock.fixed(Instant.parse("2026-12-05T23:00:00Z"), ZoneOffset.UTC);

  private final AtomicInteger payloadReads = new AtomicInteger();
  private final UnsignedPartPayload.Signer signer = new UnsignedPartPayload.Signer(AwsV4HttpSigner.create());

  @Test
  void aPartOverPlainHttpGoesUnsignedWithTheSignatureTlsWouldGetAndItsPayloadUnread() {
    SignedRequest signed = signer.sign(signRequest("http", 9000, true));

    SdkHttpRequest request = signed.request();
    assertThat(request.firstMatchingHeader("x-amz-content-sha256")).hasValue("UNSIGNED-PAYLOAD");
    assertThat(request.protocol()).isEqualTo("http");
    assertThat(request.port()).isEqualTo(9000);
    assertThat(request.firstMatchingHeader("Host")).hasValue("127.0.0.1:9000");
    assertThat(payloadReads).hasValue(0); // nothing was hashed
    // The server checks the signature from the method, path, query and headers: the scheme is not in it.
    SignedRequest overTls = AwsV4HttpSigner.create().sign(signRequest("https", 9000, true)
        .copy(b -> b.putProperty(AwsV4HttpSigner.PAYLOAD_SIGNING_ENABLED, false)));
    assertThat(request.firstMatchingHeader("Authorization"))
        .isEqualTo(overTls.request().firstMatchingHeader("Authorization"));
  }

  @Test
  void onPort80TheHostHeaderStaysWithoutAPort() {
    SdkHttpRequest request = signer.sign(signRequest("http", 80, true)).request();

    assertThat(request.firstMatchingHeader("Host")).hasValue("127.0.0.1");
    assertThat(request.port()).isEqualTo(80);
    assertThat(request.firstMatchingHeader("x-amz-content-sha256")).hasValue("UNSIGNED-PAYLOAD");
  }

  @Test
  void everyOtherRequestOverPlainHttpIsStillSignedWhole() {
    SdkHttpRequest request = signer.sign(signRequest("http", 9000, false)).request();

    assertThat(request.firstMatchingHeader("x-amz-content-sha256")).hasValue(Sha256.hexOf(PART));
    assertThat(payloadReads.get()).isPositive();
  }

  @Test
  void onlyUploadPartIsMarkedUnsigned() {
    for (String operation : new String[] {"UploadPart", "PutObject", "CompleteMultipartUpload", "GetObject"}) {
      S3AuthSchemeParams params = S3AuthSchemeParams.builder().operation(operation).region(Region.US_EAST_1)
          .bucket("stasis").build();
      List<AuthSchemeOption> options = UnsignedPartPayload.markUnsigned(params,
          S3AuthSchemeProvider.defaultProvider().resolveAuthScheme(params));

      assertThat(options).isNotEmpty().allSatisfy(option ->
          assertThat(option.signerProperty(UnsignedPartPayload.UNSIGNED))
              .as(operation).isEqualTo(operation.equals("UploadPart") ? Boolean.TRUE : null));
    }
  }

  private SignRequest<AwsCredentialsIdentity> signRequest(String protocol, int port, boolean unsigned) {
    SdkHttpFullRequest http = SdkHttpFullRequest.builder().method(SdkHttpMethod.PUT).protocol(protocol)
        .host("127.0.0.1").port(port).encodedPath("/stasis/ns/ckpt/archive.tar.zst")
        .putRawQueryParameter("partNumber", "1").putRawQueryParameter("uploadId", "u1")
        .putHeader("Content-Length", Integer.toString(PART.length)).build();
    ContentStreamProvider payload = () -> {
      payloadReads.incrementAndGet();
      return new ByteArrayInputStream(PART);
    };
    SignRequest.Builder<AwsCredentialsIdentity> builder = SignRequest.builder(
            AwsCredentialsIdentity.create("access", "secret"))
        .request(http).payload(payload)
        .putProperty(AwsV4HttpSigner.REGION_NAME, "us-east-1")
        .putProperty(AwsV4HttpSigner.SERVICE_SIGNING_NAME, "s3")
        .putProperty(AwsV4HttpSigner.DOUBLE_URL_ENCODE, false)
        .putProperty(AwsV4HttpSigner.NORMALIZE_PATH, false)
        .putProperty(AwsV4HttpSigner.PAYLOAD_SIGNING_ENABLED, false)
        .putProperty(AwsV4HttpSigner.SIGNING_CLOCK, CLOCK);
    if (unsigned) {
      builder.putProperty(UnsignedPartPayload.UNSIGNED, true);
    }
    return builder.build();
  }
}
