package dev.stasis.criu;

import dev.stasis.criu.DumpContents.MemoryRun;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A process's {@code pagemap-<pid>.img} read while CRIU still writes it. CRIU's page transfer
 * (criu/page-xfer.c, local images) appends one length-prefixed pagemap_entry per run of pages to
 * the pagemap through its buffered image writer (criu/bfd.c, flushed when the buffer fills and when
 * the image is closed) and splices the run's pages into {@code pages-<n>.img} without a buffer. So
 * the pagemap on disk trails the pages, and it may end inside an entry (a flush in the middle of a
 * message): only whole entries are read, the rest waits for the next {@link #read}. The pages a run
 * names may also not be on disk yet when its entry is: callers wait for the pages file to be long
 * enough. Once CRIU is done, a pagemap that still ends inside an entry is not one CRIU completed
 * ({@link #requireWhole}).
 */
public final class GrowingPagemap implements AutoCloseable {
  /** A pagemap_entry is a few varints; a length prefix far beyond is not CRIU's. */
  private static final int MAX_ENTRY_BYTES = 4096;

  private final Path file;
  private FileChannel channel;
  /** Read from the file and not yet taken as whole messages; in write mode between reads. */
  private ByteBuffer pending = ByteBuffer.allocate(16 << 10).order(ByteOrder.LITTLE_ENDIAN);
  private boolean magicRead;
  private Path pagesFile;

  public GrowingPagemap(Path file) {
    this.file = file;
  }

  /**
   * The runs of the entries completed since the last call whose pages are in the pages image, in
   * image order; empty while the file does not exist or holds no new whole entry.
   */
  public List<MemoryRun> read() throws IOException {
    if (channel == null) {
      if (!Files.exists(file)) {
        return List.of();
      }
      channel = FileChannel.open(file, StandardOpenOption.READ);
    }
    while (true) {
      if (!pending.hasRemaining()) {
        pending = ByteBuffer.allocate(pending.capacity() * 2).order(ByteOrder.LITTLE_ENDIAN).put(pending.flip());
      }
      if (channel.read(pending) <= 0) {
        break;
      }
    }
    pending.flip();
    try {
      return wholeEntries();
    } finally {
      pending.compact();
    }
  }

  private List<MemoryRun> wholeEntries() throws IOException {
    List<MemoryRun> runs = new ArrayList<>();
    String name = file.getFileName().toString();
    if (!magicRead) {
      if (pending.remaining() < 8) {
        return runs;
      }
      int first = pending.getInt();
      if ((first != ImageFile.IMG_COMMON_MAGIC && first != ImageFile.IMG_SERVICE_MAGIC)
          || pending.getInt() != ImageFile.PAGEMAP_MAGIC) {
        throw new IOException("not a " + name + " image: it does not start with the magic CRIU gives one");
      }
      magicRead = true;
    }
    while (pending.remaining() >= 4) {
      int length = pending.getInt(pending.position());
      if (length < 0 || length > MAX_ENTRY_BYTES) {
        throw new IOException(name + ": entry length " + length + " is not that of a pagemap entry");
      }
      if (pending.remaining() < 4 + length) {
        break;
      }
      pending.position(pending.position() + 4);
      ProtobufMessage message;
      try {
        message = new ProtobufMessage(pending.slice().limit(length));
      } catch (RuntimeException e) {
        throw new IOException(name + " is malformed: " + e, e);
      }
      pending.position(pending.position() + length);
      if (pagesFile == null) {
        pagesFile = DumpContents.pagesFile(file.getParent(), message);
      } else {
        DumpContents.runInPagesFile(message).ifPresent(runs::add);
      }
    }
    return runs;
  }

  /** The pages image the pagemap's head names, once the head was read. */
  public Optional<Path> pagesFile() {
    return Optional.ofNullable(pagesFile);
  }

  /** CRIU is done and everything was {@link #read}: fails unless the pagemap ends with a whole entry. */
  public void requireWhole() throws IOException {
    if (pending.position() > 0 || (channel != null && !magicRead)) {
      throw new IOException(file.getFileName() + " ends inside an entry: not a pagemap CRIU completed");
    }
  }

  @Override
  public void close() throws IOException {
    if (channel != null) {
      channel.close();
    }
  }
}
