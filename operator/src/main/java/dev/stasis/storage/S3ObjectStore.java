package dev.stasis.storage;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.S3Configuration;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.DeleteObjectsResponse;
import software.amazon.awssdk.services.s3.model.MultipartUpload;
import software.amazon.awssdk.services.s3.model.NoSuchBucketException;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.NoSuchUploadException;
import software.amazon.awssdk.services.s3.model.ObjectIdentifier;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * Object storage in an S3-compatible bucket, under an optional key prefix.
 *
 * <p>Uploads are multipart: bytes collect in part-sized buffers and each full part is sent at once,
 * up to {@value #PARALLEL_PARTS} at a time, so compressing the next part overlaps with sending the
 * previous ones. At most {@value #BUFFERS_PER_UPLOAD} part buffers exist per upload; a writer that
 * gets ahead of the network waits for one. An object smaller than one part is sent with a single
 * PutObject. A failed or aborted upload aborts its multipart upload, so no parts stay behind to be
 * billed.
 */
public final class S3ObjectStore implements ObjectStore {
  // Fewer, larger requests: per request, S3 servers and the SDK sign, buffer and record each part.
  public static final int DEFAULT_PART_SIZE = 16 << 20;
  /** S3 refuses smaller parts, except for the last one. */
  public static final int MIN_PART_SIZE = 5 << 20;
  private static final int PARALLEL_PARTS = 3;
  // One part filling while the others are sent.
  private static final int BUFFERS_PER_UPLOAD = PARALLEL_PARTS + 1;
  // S3's limit for one DeleteObjects request.
  private static final int DELETE_BATCH = 1000;

  private static final Logger LOG = LoggerFactory.getLogger(S3ObjectStore.class);

  private final S3Config config;
  private final int partSize;
  private final S3Client s3;
  private final ExecutorService partUploads;

  public S3ObjectStore(S3Config config) {
    this(config, DEFAULT_PART_SIZE);
  }

  /** @param partSize bytes per multipart part, at least {@link #MIN_PART_SIZE} */
  public S3ObjectStore(S3Config config, int partSize) {
    if (partSize < MIN_PART_SIZE) {
      throw new IllegalArgumentException(
          "S3 parts must be at least " + MIN_PART_SIZE + " bytes, got " + partSize);
    }
    this.config = config;
    this.partSize = partSize;
    this.s3 = newClient(config);
    AtomicInteger threads = new AtomicInteger();
    this.partUploads = Executors.newFixedThreadPool(PARALLEL_PARTS, task -> {
      Thread thread = new Thread(task, "s3-part-upload-" + threads.incrementAndGet());
      thread.setDaemon(true);
      return thread;
    });
  }

  private static S3Client newClient(S3Config config) {
    S3ClientBuilder builder = S3Client.builder()
        .httpClientBuilder(UrlConnectionHttpClient.builder()
            .connectionTimeout(Duration.ofSeconds(10))
            .socketTimeout(Duration.ofMinutes(2)))
        .region(Region.of(config.region()))
        .forcePathStyle(config.pathStyle())
        // Every body sent is an in-memory buffer of known length, so the SDK can sign it whole;
        // aws-chunked signing is only needed for one-shot streams, and not every S3-compatible
        // server handles it well (s3proxy reads it a byte at a time: uploads ran 3x slower).
        .serviceConfiguration(S3Configuration.builder().chunkedEncodingEnabled(false).build())
        .credentialsProvider(credentials(config))
        // Archives carry their own sha256 end to end. The SDK's optional CRC checksums add
        // nothing to that and are not understood by every S3-compatible server.
        .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
        .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED);
    if (config.endpoint() != null) {
      builder.endpointOverride(URI.create(config.endpoint()));
    }
    return UnsignedPartPayload.configure(builder).build();
  }

  private static AwsCredentialsProvider credentials(S3Config config) {
    if (config.accessKeyId() == null) {
      return DefaultCredentialsProvider.builder().build();
    }
    return StaticCredentialsProvider.create(
        AwsBasicCredentials.create(config.accessKeyId(), config.secretAccessKey()));
  }

  @Override
  public ObjectUpload upload(String key) {
    return new MultipartObjectUpload(objectKey(key));
  }

  @Override
  public void put(String key, byte[] content) throws IOException {
    try {
      s3.putObject(b -> b.bucket(config.bucket()).key(objectKey(key)), body(content, content.length));
    } catch (SdkException e) {
      throw translate(e, "writing " + uri(key));
    }
  }

  @Override
  public InputStream open(String key) throws IOException {
    try {
      return s3.getObject(b -> b.bucket(config.bucket()).key(objectKey(key)));
    } catch (NoSuchKeyException e) {
      throw new ObjectNotFoundException(uri(key));
    } catch (SdkException e) {
      throw translate(e, "reading " + uri(key));
    }
  }

  @Override
  public byte[] read(String key) throws IOException {
    try {
      return s3.getObjectAsBytes(b -> b.bucket(config.bucket()).key(objectKey(key))).asByteArrayUnsafe();
    } catch (NoSuchKeyException e) {
      throw new ObjectNotFoundException(uri(key));
    } catch (SdkException e) {
      throw translate(e, "reading " + uri(key));
    }
  }

  @Override
  public InputStream openRange(String key, long offset, long length) throws IOException {
    if (offset < 0 || length <= 0) {
      throw new IllegalArgumentException("a range of " + length + " bytes at " + offset);
    }
    try {
      return s3.getObject(b -> b.bucket(config.bucket()).key(objectKey(key))
          .range("bytes=" + offset + "-" + (offset + length - 1)));
    } catch (NoSuchKeyException e) {
      throw new ObjectNotFoundException(uri(key));
    } catch (S3Exception e) {
      if (e.statusCode() == 416) {
        throw new IOException(uri(key) + " ends before byte " + offset);
      }
      throw translate(e, "reading " + uri(key));
    } catch (SdkException e) {
      throw translate(e, "reading " + uri(key));
    }
  }

  @Override
  public boolean exists(String key) throws IOException {
    try {
      s3.headObject(b -> b.bucket(config.bucket()).key(objectKey(key)));
      return true;
    } catch (NoSuchKeyException e) {
      return false;
    } catch (S3Exception e) {
      // HEAD responses have no body, so some servers' 404s arrive without the NoSuchKey code.
      if (e.statusCode() == 404 && !(e instanceof NoSuchBucketException)) {
        return false;
      }
      throw translate(e, "looking for " + uri(key));
    } catch (SdkException e) {
      throw translate(e, "looking for " + uri(key));
    }
  }

  @Override
  public void forEach(String keyPrefix, ObjectVisitor visitor) throws IOException {
    forEachPage(keyPrefix, page -> {
      for (S3Object object : page) {
        // Keys ending in '/' are folder markers made by consoles and tools, not objects.
        if (!object.key().endsWith("/")) {
          visitor.visit(new StoredObject(keyOf(object.key()), object.size(), object.lastModified()));
        }
      }
    });
  }

  @Override
  public List<String> folders(String keyPrefix) throws IOException {
    try {
      List<String> folders = new ArrayList<>();
      for (var page : s3.listObjectsV2Paginator(b -> b.bucket(config.bucket()).prefix(objectKey(keyPrefix))
          .delimiter("/").maxKeys(DELETE_BATCH))) {
        page.commonPrefixes().forEach(p -> folders.add(keyOf(p.prefix())));
      }
      return folders;
    } catch (SdkException e) {
      throw translate(e, "listing folders under " + uri(keyPrefix));
    }
  }

  @Override
  public void delete(List<String> keys) throws IOException {
    for (int from = 0; from < keys.size(); from += DELETE_BATCH) {
      deleteObjects(keys.subList(from, Math.min(keys.size(), from + DELETE_BATCH)).stream()
          .map(key -> ObjectIdentifier.builder().key(objectKey(key)).build()).toList(), "deleting " + keys.size()
          + " objects, e.g. " + uri(keys.get(0)));
    }
  }

  /** One DeleteObjects request, of at most {@value #DELETE_BATCH} keys. */
  private void deleteObjects(List<ObjectIdentifier> batch, String action) throws IOException {
    try {
      DeleteObjectsResponse response = s3.deleteObjects(b -> b.bucket(config.bucket())
          .delete(d -> d.objects(batch).quiet(true)));
      if (response.hasErrors() && !response.errors().isEmpty()) {
        var error = response.errors().get(0);
        throw new IOException(action + " failed for " + response.errors().size() + " objects, e.g. " + error.key()
            + ": " + error.code() + " " + error.message());
      }
    } catch (SdkException e) {
      throw translate(e, action);
    }
  }

  /** Multipart uploads: S3 tells when each was initiated, not how many bytes its parts hold so far. */
  @Override
  public List<StoredObject> listUnfinished(String keyPrefix) throws IOException {
    try {
      List<StoredObject> uploads = new ArrayList<>();
      for (MultipartUpload upload : s3.listMultipartUploadsPaginator(
          b -> b.bucket(config.bucket()).prefix(objectKey(keyPrefix))).uploads()) {
        // A server that does not say when it began gets it counted as old: it has had time enough.
        Instant initiated = upload.initiated() != null ? upload.initiated() : Instant.EPOCH;
        uploads.add(new StoredObject(keyOf(upload.key()), 0, initiated));
      }
      return uploads;
    } catch (SdkException e) {
      throw translate(e, "listing unfinished multipart uploads under " + uri(keyPrefix));
    }
  }

  @Override
  public int deleteUnfinished(String key, Instant before) throws IOException {
    int aborted = 0;
    try {
      for (MultipartUpload upload : s3.listMultipartUploadsPaginator(
          b -> b.bucket(config.bucket()).prefix(objectKey(key))).uploads()) {
        Instant initiated = upload.initiated() != null ? upload.initiated() : Instant.EPOCH;
        if (upload.key().equals(objectKey(key)) && initiated.isBefore(before)) {
          try {
            s3.abortMultipartUpload(b -> b.bucket(config.bucket()).key(upload.key()).uploadId(upload.uploadId()));
            aborted++;
          } catch (NoSuchUploadException e) {
            // it completed or was aborted meanwhile
          }
        }
      }
      return aborted;
    } catch (SdkException e) {
      throw translate(e, "aborting unfinished uploads to " + uri(key));
    }
  }

  /**
   * Also aborts unfinished multipart uploads under the prefix: their uploader could only fail
   * now, and their parts would otherwise be kept (and billed) until a lifecycle rule ends them.
   * That part is best effort, so that credentials without the permission to list multipart
   * uploads can still delete checkpoints.
   */
  @Override
  public void deleteAll(String keyPrefix) throws IOException {
    // One listing page (at most DELETE_BATCH keys, S3's limit for one DeleteObjects) at a time.
    forEachPage(keyPrefix, page -> {
      List<ObjectIdentifier> batch = page.stream().map(object -> ObjectIdentifier.builder().key(object.key()).build())
          .toList();
      if (!batch.isEmpty()) {
        deleteObjects(batch, "deleting objects under " + uri(keyPrefix));
      }
    });
    abortUnfinishedUploads(keyPrefix);
  }

  private void abortUnfinishedUploads(String keyPrefix) {
    try {
      for (MultipartUpload unfinished : s3.listMultipartUploadsPaginator(
          b -> b.bucket(config.bucket()).prefix(objectKey(keyPrefix))).uploads()) {
        try {
          s3.abortMultipartUpload(b -> b.bucket(config.bucket()).key(unfinished.key())
              .uploadId(unfinished.uploadId()));
        } catch (NoSuchUploadException e) {
          // it completed or was aborted meanwhile
        }
      }
    } catch (SdkException e) {
      LOG.warn("could not abort unfinished uploads under {}: {}; a lifecycle rule for incomplete"
          + " multipart uploads has to remove them", uri(keyPrefix), e.toString());
    }
  }

  /** Checks the bucket, then writes, reads back and deletes a probe object under the prefix. */
  @Override
  public void check() throws StorageUnavailableException {
    String probeKey = CHECK_PROBE_PREFIX + Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36);
    byte[] probe = ("written by stasis to check " + uri(probeKey)).getBytes(StandardCharsets.UTF_8);
    try {
      s3.headBucket(b -> b.bucket(config.bucket()));
      put(probeKey, probe);
      byte[] readBack = read(probeKey);
      s3.deleteObject(b -> b.bucket(config.bucket()).key(objectKey(probeKey)));
      if (!Arrays.equals(readBack, probe)) {
        throw new StorageUnavailableException("bucket " + config.bucket() + " at " + endpoint()
            + " returned other bytes than were written to it");
      }
    } catch (StorageUnavailableException e) {
      throw e;
    } catch (SdkException e) {
      throw unavailable(e, "checking bucket " + config.bucket() + " at " + endpoint());
    } catch (IOException e) {
      throw new StorageUnavailableException(
          "cannot use bucket " + config.bucket() + " at " + endpoint() + ": " + e.getMessage(), e);
    }
  }

  @Override
  public String uri(String key) {
    return "s3://" + config.bucket() + "/" + objectKey(key);
  }

  /** Uploads still running are cut off; commit or abort them first. */
  @Override
  public void close() {
    partUploads.shutdownNow();
    s3.close();
  }

  /** The listing under the prefix, one page of at most {@value #DELETE_BATCH} objects at a time. */
  private void forEachPage(String keyPrefix, PageVisitor visitor) throws IOException {
    String listing = "listing objects under " + uri(keyPrefix);
    var pages = s3.listObjectsV2Paginator(b -> b.bucket(config.bucket()).prefix(objectKey(keyPrefix))
        .maxKeys(DELETE_BATCH)).iterator();
    while (true) {
      List<S3Object> page;
      try {
        if (!pages.hasNext()) {
          return;
        }
        page = pages.next().contents();
      } catch (SdkException e) {
        throw translate(e, listing);
      }
      visitor.visit(page);
    }
  }

  @FunctionalInterface
  private interface PageVisitor {
    void visit(List<S3Object> page) throws IOException;
  }

  private String objectKey(String key) {
    return config.prefix().isEmpty() ? key : config.prefix() + "/" + key;
  }

  private String keyOf(String objectKey) {
    return config.prefix().isEmpty() ? objectKey : objectKey.substring(config.prefix().length() + 1);
  }

  private String endpoint() {
    return config.endpoint() != null ? config.endpoint() : "https://s3." + config.region() + ".amazonaws.com";
  }

  /**
   * Turns an SDK failure into an IOException: a {@link StorageUnavailableException} saying what to
   * fix when the storage as a whole cannot be used, otherwise one naming what failed.
   */
  private IOException translate(SdkException e, String action) {
    StorageUnavailableException unavailable = unavailable(e, action);
    return isStorageWide(e) ? unavailable : new IOException(unavailable.getMessage(), e);
  }

  private static boolean isStorageWide(SdkException e) {
    if (e instanceof S3Exception) {
      int status = ((S3Exception) e).statusCode();
      return e instanceof NoSuchBucketException || status == 403 || status == 301;
    }
    return true;
  }

  private StorageUnavailableException unavailable(SdkException e, String action) {
    String bucket = config.bucket();
    if (e instanceof S3Exception) {
      S3Exception s3e = (S3Exception) e;
      String code = s3e.awsErrorDetails() != null ? s3e.awsErrorDetails().errorCode() : null;
      if (e instanceof NoSuchBucketException) {
        return new StorageUnavailableException("bucket " + bucket + " does not exist at " + endpoint(), e);
      }
      if (s3e.statusCode() == 403) {
        return new StorageUnavailableException("access denied to bucket " + bucket
            + ": check the credentials Secret" + (code != null ? " (S3 says " + code + ")" : ""), e);
      }
      if (s3e.statusCode() == 301) {
        String actualRegion = s3e.awsErrorDetails() == null ? null : s3e.awsErrorDetails().sdkHttpResponse()
            .firstMatchingHeader("x-amz-bucket-region").orElse(null);
        return new StorageUnavailableException("bucket " + bucket + " is not in region " + config.region()
            + (actualRegion != null ? " but in " + actualRegion : "") + ": set the storage's region", e);
      }
      return new StorageUnavailableException(action + " failed: S3 answered " + s3e.statusCode()
          + (code != null ? " " + code : "") + ": " + s3e.getMessage(), e);
    }
    String reason = networkReason(e);
    if (reason != null) {
      return new StorageUnavailableException("cannot reach S3 endpoint " + endpoint() + ": " + reason, e);
    }
    boolean noCredentials = String.valueOf(e.getMessage()).contains("Unable to load credentials");
    if (config.accessKeyId() == null && noCredentials) {
      return new StorageUnavailableException("no S3 credentials for bucket " + bucket
          + ": the storage names no credentials Secret and the AWS default credential chain"
          + " found none", e);
    }
    return new StorageUnavailableException(action + " failed: " + e.getMessage(), e);
  }

  /** What stopped the request from reaching S3, if that is what happened. */
  private static String networkReason(Throwable e) {
    for (Throwable cause = e; cause != null; cause = cause.getCause()) {
      if (cause instanceof ConnectException) {
        return "connection refused";
      }
      if (cause instanceof UnknownHostException) {
        return "unknown host " + cause.getMessage();
      }
      if (cause instanceof SocketTimeoutException) {
        return "timed out";
      }
    }
    return null;
  }

  /** A request body the SDK can re-read for signing and retries without copying the bytes. */
  private static RequestBody body(byte[] bytes, int length) {
    return RequestBody.fromContentProvider(
        () -> new ByteArrayInputStream(bytes, 0, length), length, "application/octet-stream");
  }

  /** One object being uploaded in parts; used by one writer thread. */
  private final class MultipartObjectUpload implements ObjectUpload {
    private final String objectKey;
    private final String action;
    private final BlockingQueue<byte[]> freeBuffers = new ArrayBlockingQueue<>(BUFFERS_PER_UPLOAD);
    // The writer adds parts while an agent shutdown may abort from another thread.
    private final List<Future<CompletedPart>> parts = new CopyOnWriteArrayList<>();
    private final OutputStream stream = new PartStream();
    private int buffersAllocated;
    private byte[] buffer;
    private int filled;
    private long size;
    /**
     * Created when the first part is full; small objects never need one. Published only while the
     * upload is open ({@link UploadState#whileOpen}), since another thread (an agent's shutdown) may
     * abort while the writer is still creating it: either the abort sees it, or the writer sees the abort.
     */
    private volatile String uploadId;
    private volatile Exception partFailure;
    private final UploadState state;

    MultipartObjectUpload(String objectKey) {
      this.objectKey = objectKey;
      this.action = "uploading s3://" + config.bucket() + "/" + objectKey;
      this.state = new UploadState(action);
    }

    @Override
    public OutputStream stream() {
      return stream;
    }

    @Override
    public long commit() throws IOException {
      state.requireOpen();
      try {
        if (uploadId == null) {
          byte[] content = buffer == null ? new byte[0] : buffer;
          s3.putObject(b -> b.bucket(config.bucket()).key(objectKey), body(content, filled));
        } else {
          if (filled > 0) {
            sendBuffer();
          }
          List<CompletedPart> completed = new ArrayList<>();
          for (Future<CompletedPart> part : parts) {
            completed.add(part.get());
          }
          s3.completeMultipartUpload(b -> b.bucket(config.bucket()).key(objectKey)
              .uploadId(uploadId).multipartUpload(m -> m.parts(completed)));
        }
        state.committed();
        releaseBuffers();
        return size;
      } catch (SdkException e) {
        abort();
        throw translate(e, action);
      } catch (ExecutionException e) {
        abort();
        throw failedPart(e.getCause());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        abort();
        throw new InterruptedIOException("interrupted while " + action);
      } catch (IOException | RuntimeException e) {
        abort();
        throw e;
      }
    }

    @Override
    public void abort() {
      if (!state.abort()) {
        return;
      }
      String created = uploadId;
      // A part still being sent could land after the abort and leave an upload behind; parts not
      // yet started see the flag and skip.
      for (Future<CompletedPart> part : parts) {
        try {
          part.get();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        } catch (ExecutionException e) {
          // already reported to the writer, or of no interest once aborting
        }
      }
      if (created != null) {
        abortMultipart(created);
      }
      releaseBuffers();
    }

    private void abortMultipart(String id) {
      try {
        s3.abortMultipartUpload(b -> b.bucket(config.bucket()).key(objectKey).uploadId(id));
      } catch (NoSuchUploadException e) {
        // a deleteAll of its prefix aborted it already
      } catch (SdkException e) {
        LOG.warn("could not abort multipart upload {} of s3://{}/{}: {}; its parts stay until a"
            + " lifecycle rule for incomplete uploads removes them", id, config.bucket(), objectKey, e.toString());
      }
    }

    private void write(byte[] bytes, int offset, int length) throws IOException {
      state.requireOpen();
      while (length > 0) {
        if (partFailure != null) {
          abort();
          throw failedPart(partFailure);
        }
        if (buffer == null) {
          buffer = takeBuffer();
        }
        int n = Math.min(length, partSize - filled);
        System.arraycopy(bytes, offset, buffer, filled, n);
        filled += n;
        offset += n;
        length -= n;
        size += n;
        if (filled == partSize) {
          sendBuffer();
        }
      }
    }

    /** Blocks while all buffers are being sent: this is what bounds an upload's memory. */
    private byte[] takeBuffer() throws IOException {
      if (freeBuffers.isEmpty() && buffersAllocated < BUFFERS_PER_UPLOAD) {
        buffersAllocated++;
        return new byte[partSize];
      }
      try {
        return freeBuffers.take();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        abort();
        throw new InterruptedIOException("interrupted while " + action);
      }
    }

    private void sendBuffer() throws IOException {
      if (uploadId == null) {
        String created;
        try {
          created = s3.createMultipartUpload(b -> b.bucket(config.bucket()).key(objectKey)).uploadId();
        } catch (SdkException e) {
          abort();
          throw translate(e, action);
        }
        // Aborted while it was being created: nothing may stay behind.
        if (!state.whileOpen(() -> uploadId = created)) {
          abortMultipart(created);
          throw new IOException(action + ": the upload was aborted");
        }
      }
      int partNumber = parts.size() + 1;
      byte[] part = buffer;
      int length = filled;
      buffer = null;
      filled = 0;
      parts.add(partUploads.submit(() -> sendPart(partNumber, part, length)));
    }

    private CompletedPart sendPart(int partNumber, byte[] part, int length) {
      try {
        if (state.aborted()) {
          return null;
        }
        String eTag = s3.uploadPart(b -> b.bucket(config.bucket()).key(objectKey)
                .uploadId(uploadId).partNumber(partNumber), body(part, length))
            .eTag();
        return CompletedPart.builder().partNumber(partNumber).eTag(eTag).build();
      } catch (RuntimeException e) {
        if (partFailure == null) {
          partFailure = e;
        }
        throw e;
      } finally {
        freeBuffers.add(part);
      }
    }

    private void releaseBuffers() {
      buffer = null;
      freeBuffers.clear();
    }

    private IOException failedPart(Throwable cause) {
      return cause instanceof SdkException
          ? translate((SdkException) cause, action)
          : new IOException(action + " failed: " + cause, cause);
    }

    /** Closing it is harmless: only commit() or abort() end the upload. */
    private final class PartStream extends OutputStream {
      @Override
      public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] bytes, int offset, int length) throws IOException {
        MultipartObjectUpload.this.write(bytes, offset, length);
      }
    }
  }
}
