package dev.stasis.archive.dedup;

import dev.stasis.archive.ArchiveIntegrityException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.SequenceInputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.regex.Pattern;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarFile;

/**
 * A tar someone else wrote (the kubelet's checkpoint archive) with the data of its memory images
 * left out, so that those can be stored as chunks and the tar put back together byte for byte
 * (docs/dedup.md, "Pod checkpoints"). Everything the tar holds besides those images' data (headers,
 * pax and GNU long-name records, the other files, padding, the end-of-archive blocks, the order) is
 * kept as it is, so no tar writer has to be imitated.
 *
 * <p>Format (big-endian): {@code "STSK"}, version 1, the tar's length (u64), then records, each a
 * tag byte: 1 literal (u64 length, then that many bytes of the tar as they are), 2 image (u16 name
 * length, the name in UTF-8, {@code pages-<n>.img}, then the u64 length of the image's data, which
 * goes here and comes from the chunk index, whose images are in the same order), 0 end. The
 * skeleton is stored as the checkpoint's archive object, whose sha256 the manifest records; the
 * rebuilt tar is checked against the manifest's {@code archive.tarSha256} by the caller.
 */
public final class TarSkeleton {
  private static final byte[] MAGIC = "STSK".getBytes(StandardCharsets.US_ASCII);
  private static final int VERSION = 1;
  private static final int TAG_END = 0;
  private static final int TAG_LITERAL = 1;
  private static final int TAG_IMAGE = 2;
  private static final int COPY_BUFFER = 1 << 16;
  private static final Pattern IMAGE_NAME = Pattern.compile("pages-[0-9]{1,10}\\.img");

  private TarSkeleton() {}

  /** A regular file in the tar: its name (without a leading {@code ./}), where its data starts, its length. */
  public record Entry(String name, long dataOffset, long bytes) {}

  /** An image whose data is left out: the file name the chunk index gives it, and where it is in the tar. */
  public record Image(String fileName, long offset, long bytes) {
    public Image {
      if (!IMAGE_NAME.matcher(fileName).matches()) {
        throw new IllegalArgumentException("not a pages image: " + fileName);
      }
    }
  }

  /** The regular files of {@code tar}, from its headers alone (data is skipped over), in tar order. */
  public static List<Entry> files(Path tar) throws IOException {
    List<Entry> files = new ArrayList<>();
    try (TarFile file = new TarFile(tar)) {
      for (TarArchiveEntry entry : file.getEntries()) {
        if (entry.isFile() && !entry.isSparse()) {
          files.add(new Entry(entry.getName().replaceFirst("^\\./", ""), entry.getDataOffset(), entry.getSize()));
        }
      }
    }
    return files;
  }

  /**
   * The skeleton of the {@code tarBytes} long tar read from {@code tar}: the tar without the data of
   * {@code images} (in tar order, not overlapping, inside the tar). Read lazily, by positional reads.
   */
  public static InputStream split(FileChannel tar, long tarBytes, List<Image> images) {
    List<InputStream> parts = new ArrayList<>();
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    long at = 0;
    try (DataOutputStream out = new DataOutputStream(head)) {
      out.write(MAGIC);
      out.writeByte(VERSION);
      out.writeLong(tarBytes);
      for (Image image : images) {
        if (image.offset() < at || image.offset() + image.bytes() > tarBytes) {
          throw new IllegalArgumentException(image + " is not after the previous image inside the tar");
        }
        out.writeByte(TAG_LITERAL);
        out.writeLong(image.offset() - at);
        parts.add(new ByteArrayInputStream(head.toByteArray()));
        parts.add(range(tar, at, image.offset() - at));
        head.reset();
        byte[] name = image.fileName().getBytes(StandardCharsets.UTF_8);
        out.writeByte(TAG_IMAGE);
        out.writeShort(name.length);
        out.write(name);
        out.writeLong(image.bytes());
        at = image.offset() + image.bytes();
      }
      out.writeByte(TAG_LITERAL);
      out.writeLong(tarBytes - at);
      parts.add(new ByteArrayInputStream(head.toByteArray()));
      parts.add(range(tar, at, tarBytes - at));
      parts.add(new ByteArrayInputStream(new byte[] {TAG_END}));
    } catch (IOException e) {
      throw new IllegalStateException("writing to memory cannot fail", e);
    }
    return new SequenceInputStream(Collections.enumeration(parts));
  }

  /** {@code bytes} of {@code file} from {@code offset}, by positional reads (the channel is shared, not closed). */
  public static InputStream range(FileChannel file, long offset, long bytes) {
    return new InputStream() {
      private long read;

      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        if (read == bytes) {
          return -1;
        }
        int n = file.read(ByteBuffer.wrap(b, off, (int) Math.min(len, bytes - read)), offset + read);
        if (n < 0) {
          throw new EOFException("the file ends at byte " + (offset + read) + ", before the " + bytes
              + " bytes from " + offset + " it had when it was read");
        }
        read += n;
        return n;
      }
    };
  }

  /**
   * Puts a tar back together from its skeleton: {@link #layOut} writes everything but the images'
   * data at its place in a file and says where each image goes, for the chunks to be written there
   * (in any order). Anything that does not fit (a record of another kind, lengths beyond the tar's,
   * a tar of another length, a skeleton that is not one) throws an {@link ArchiveIntegrityException}.
   */
  public static final class Rebuild {
    private final DataInputStream skeleton;
    private final long tarBytes;
    private final byte[] buffer = new byte[COPY_BUFFER];

    /** Reads the skeleton's head. */
    public Rebuild(InputStream skeleton) throws IOException {
      this.skeleton = new DataInputStream(skeleton);
      byte[] magic = this.skeleton.readNBytes(MAGIC.length);
      if (!Arrays.equals(magic, MAGIC)) {
        throw new ArchiveIntegrityException("the archive is not a tar skeleton: it does not start with STSK");
      }
      int version = readByte();
      if (version != VERSION) {
        throw new ArchiveIntegrityException("the tar skeleton has version " + version + ", this agent reads "
            + VERSION + ": upgrade the agent");
      }
      tarBytes = readLong();
      if (tarBytes < 0) {
        throw new ArchiveIntegrityException("the tar skeleton gives a negative length");
      }
    }

    /** The length of the tar being put together, as the skeleton says (the caller checks the tar's sha256). */
    public long tarBytes() {
      return tarBytes;
    }

    /**
     * Writes the skeleton's literals at their places in {@code tar} (from its start) and returns
     * the images whose data goes between them, in skeleton order.
     */
    public List<Image> layOut(FileChannel tar) throws IOException {
      List<Image> images = new ArrayList<>();
      long at = 0;
      while (true) {
        int tag = readByte();
        if (tag == TAG_END) {
          break;
        }
        if (tag == TAG_LITERAL) {
          long length = readLength(at, "literal");
          for (long left = length; left > 0; ) {
            int n = skeleton.read(buffer, 0, (int) Math.min(buffer.length, left));
            if (n < 0) {
              throw truncated();
            }
            long position = at + (length - left);
            ByteBuffer bytes = ByteBuffer.wrap(buffer, 0, n);
            while (bytes.hasRemaining()) {
              position += tar.write(bytes, position);
            }
            left -= n;
          }
          at += length;
        } else if (tag == TAG_IMAGE) {
          String name = new String(readExactly(skeleton.readUnsignedShort()), StandardCharsets.UTF_8);
          if (!IMAGE_NAME.matcher(name).matches()) {
            throw new ArchiveIntegrityException("the tar skeleton names an image " + name + ", not a pages image");
          }
          long bytes = readLength(at, "image " + name);
          images.add(new Image(name, at, bytes));
          at += bytes;
        } else {
          throw new ArchiveIntegrityException("the tar skeleton has an unknown record " + tag);
        }
      }
      if (at != tarBytes) {
        throw new ArchiveIntegrityException("the tar skeleton's records make " + at + " bytes, its head says "
            + tarBytes);
      }
      if (skeleton.read() >= 0) {
        throw new ArchiveIntegrityException("the tar skeleton goes on after its end");
      }
      return images;
    }

    private long readLength(long at, String what) throws IOException {
      long length = readLong();
      if (length < 0 || at + length > tarBytes) {
        throw new ArchiveIntegrityException("the tar skeleton's " + what + " of " + length
            + " bytes does not fit in the " + tarBytes + " bytes of the tar");
      }
      return length;
    }

    private int readByte() throws IOException {
      int b = skeleton.read();
      if (b < 0) {
        throw truncated();
      }
      return b;
    }

    private long readLong() throws IOException {
      try {
        return skeleton.readLong();
      } catch (EOFException e) {
        throw truncated();
      }
    }

    private byte[] readExactly(int length) throws IOException {
      byte[] bytes = skeleton.readNBytes(length);
      if (bytes.length != length) {
        throw truncated();
      }
      return bytes;
    }

    private static ArchiveIntegrityException truncated() {
      return new ArchiveIntegrityException("the tar skeleton ends before its end record: it is truncated");
    }
  }
}
