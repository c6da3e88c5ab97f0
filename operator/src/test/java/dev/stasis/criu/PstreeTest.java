package dev.stasis.criu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

class PstreeTest {
  @Test
  void readsEveryProcessOfTheTree() throws IOException {
    byte[] image = image(entry(1, 0, 1, 2), entry(2, 1), entry(3, 1));
    assertThat(Pstree.parse(image)).containsExactly(new Pstree.Entry(1, 0), new Pstree.Entry(2, 1),
        new Pstree.Entry(3, 1));
  }

  @Test
  void refusesWhatIsNotAPstreeImage() {
    byte[] image = image(entry(1, 0));
    image[4] ^= 1;
    assertThatThrownBy(() -> Pstree.parse(image)).isInstanceOf(IOException.class).hasMessageContaining("not a pstree");
    byte[] cut = java.util.Arrays.copyOf(image(entry(1, 0), entry(2, 1)), 14);
    assertThatThrownBy(() -> Pstree.parse(cut)).isInstanceOf(IOException.class).hasMessageContaining("exceeds");
    assertThatThrownBy(() -> Pstree.parse(image())).isInstanceOf(IOException.class).hasMessageContaining("no process");
  }

  /** pstree_entry: pid = 1, ppid = 2, pgid = 3, sid = 4, threads = 5 (varints). */
  private static byte[] entry(int pid, int ppid, int... threads) {
    ByteArrayOutputStream m = new ByteArrayOutputStream();
    m.write(1 << 3);
    m.write(pid);
    m.write(2 << 3);
    m.write(ppid);
    m.write(3 << 3);
    m.write(pid);
    m.write(4 << 3);
    m.write(1);
    for (int t : threads) {
      m.write(5 << 3);
      m.write(t);
    }
    return m.toByteArray();
  }

  private static byte[] image(byte[]... entries) {
    ByteBuffer buf = ByteBuffer.allocate(1024).order(ByteOrder.LITTLE_ENDIAN);
    buf.putInt(0x54564319).putInt(0x50273030);
    for (byte[] e : entries) {
      buf.putInt(e.length).put(e);
    }
    byte[] out = new byte[buf.position()];
    buf.flip().get(out);
    return out;
  }
}
