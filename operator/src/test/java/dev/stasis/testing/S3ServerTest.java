package dev.stasis.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.tuple;

import dev.stasis.storage.ObjectUpload;
import dev.stasis.storage.S3Config;
import dev.stasis.storage.S3ObjectStore;
import dev.stasis.storage.StoredObject;
import java.io.InputStream;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The benchmark's S3 server joins multipart uploads itself: the object must come out as S3 would store it. */
class S3ServerTest {
  @Test
  void aMultipartUploadJoinedByTheServerReadsBackWholeAndLeavesNoParts() throws Exception {
    byte[] content = new byte[23 << 20]; // four full 5 MiB parts and a short last one
    new Random(7).nextBytes(content);
    try (S3Server server = S3Server.startJoiningMultipartParts()) {
      server.createBucket("bench");
      S3Config config = new S3Config(server.endpoint(), "bench", "prefix", null, true, server.accessKey(),
          server.secretKey());
      try (S3ObjectStore store = new S3ObjectStore(config, S3ObjectStore.MIN_PART_SIZE)) {
        try (ObjectUpload upload = store.upload("ns/ckpt/archive.tar.zst")) {
          upload.stream().write(content);
          assertThat(upload.commit()).isEqualTo(content.length);
        }

        try (InputStream in = store.open("ns/ckpt/archive.tar.zst")) {
          assertThat(in.readAllBytes()).isEqualTo(content);
        }
        assertThat(store.list("ns/")).extracting(StoredObject::key, StoredObject::sizeBytes)
            .containsExactly(tuple("ns/ckpt/archive.tar.zst", (long) content.length));
        store.deleteAll("ns/");
        assertThat(store.list("")).isEmpty();
      }
    }
  }
}
