package dev.stasis.storage;

/**
 * Where and how to reach an S3-compatible bucket.
 *
 * @param endpoint the server's URL, e.g. {@code http://minio.storage:9000}; null for AWS itself
 * @param bucket the bucket holding the archives
 * @param prefix key prefix under which all objects go; null or empty for the bucket's root
 * @param region the bucket's region; null means {@value #DEFAULT_REGION}, which most
 *     S3-compatible servers accept
 * @param pathStyle address buckets as {@code endpoint/bucket} rather than
 *     {@code bucket.endpoint}; most S3-compatible servers need this
 * @param accessKeyId with {@code secretAccessKey}, static credentials; both null means the AWS
 *     default credential chain (environment, profile, instance or pod identity)
 */
public record S3Config(
    String endpoint,
    String bucket,
    String prefix,
    String region,
    boolean pathStyle,
    String accessKeyId,
    String secretAccessKey) {

  public static final String DEFAULT_REGION = "us-east-1";

  public S3Config {
    if (bucket == null || bucket.isBlank()) {
      throw new IllegalArgumentException("an S3 bucket name is required");
    }
    if ((accessKeyId == null) != (secretAccessKey == null)) {
      throw new IllegalArgumentException("give both accessKeyId and secretAccessKey,"
          + " or neither to use the default AWS credential chain");
    }
    endpoint = endpoint == null || endpoint.isBlank() ? null : endpoint;
    prefix = prefix == null ? "" : prefix.replaceAll("^/+|/+$", "");
    region = region == null || region.isBlank() ? DEFAULT_REGION : region;
  }

  /** Says which credentials are used without showing them, since configs end up in logs. */
  @Override
  public String toString() {
    return "S3Config[endpoint=" + endpoint + ", bucket=" + bucket + ", prefix=" + prefix
        + ", region=" + region + ", pathStyle=" + pathStyle + ", credentials="
        + (accessKeyId == null ? "default chain" : "static") + "]";
  }
}
