package dev.stasis.storage;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** What every {@link ObjectStore} does alike: the test of each store runs these on its own. */
interface ObjectStoreContract {
  /** The store under test, fresh and empty for each test. */
  ObjectStore store();

  @Test
  default void readsARangeOfAnObjectAndSaysWhenTheObjectIsMissingOrEndsBeforeTheRange() throws IOException {
    ObjectStore store = store();
    byte[] content = new byte[300_000];
    for (int i = 0; i < content.length; i++) {
      content[i] = (byte) (i * 31 + 7);
    }
    store.put("ns/.packs/ab/pack", content);

    assertThat(store.readRange("ns/.packs/ab/pack", 131_072, 5_000))
        .isEqualTo(Arrays.copyOfRange(content, 131_072, 136_072));
    assertThat(store.readRange("ns/.packs/ab/pack", 0, content.length)).isEqualTo(content);
    try (InputStream range = store.openRange("ns/.packs/ab/pack", 131_072, 5_000)) {
      assertThat(range.readAllBytes()).as("streamed, and not a byte past the range")
          .isEqualTo(Arrays.copyOfRange(content, 131_072, 136_072));
    }
    assertThatThrownBy(() -> store.readRange("ns/.packs/ab/pack", 299_990, 20)).isInstanceOf(IOException.class)
        .isNotInstanceOf(ObjectNotFoundException.class).hasMessageContaining("ns/.packs/ab/pack");
    assertThatThrownBy(() -> store.readRange("ns/.packs/ab/pack", 400_000, 20)).isInstanceOf(IOException.class)
        .isNotInstanceOf(ObjectNotFoundException.class);
    assertThatThrownBy(() -> store.readRange("ns/.packs/ab/gone", 0, 20)).isInstanceOf(ObjectNotFoundException.class);
  }
}
