package dev.stasis.criu;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * What a CRIU dump holds, read from its images as CRIU wrote them (images/*.proto), for people
 * to look at before they restore it: the process tree with each process's command and arguments,
 * working and root folders, open files and sockets, and memory. Reads the metadata images and,
 * for the arguments only, the few bytes of memory pages that hold them. Nothing here runs CRIU or
 * needs its tools.
 *
 * @param processes in the order of CRIU's process tree (a parent before its children)
 * @param pagesBytes the memory pages the dump holds (its pages-*.img)
 * @param imagesBytes every image of the dump
 * @param stats CRIU's dump statistics, when the dump holds them (stats-dump, beside the images or their folder)
 */
public record DumpContents(List<Process> processes, long pagesBytes, long imagesBytes, DumpStats stats) {
  /** x86_64 and 4 KiB-page aarch64: what CRIU's pagemap counts in. */
  public static final int PAGE_SIZE = 4096;
  /** The process tree CRIU dumped: one pstree_entry per process (pid = 1, ppid = 2, in the tree's PID namespace). */
  private static final String PSTREE = "pstree.img";
  private static final Pattern PROCESS_PAGEMAP = Pattern.compile("pagemap-([0-9]{1,10})\\.img");
  // images/pagemap.proto flags (criu/include/pagemap.h): PE_PARENT, PE_PRESENT.
  private static final long PE_PARENT = 1;
  private static final long PE_PRESENT = 1 << 2;
  private static final int MAX_ARGUMENT_BYTES = 64 * 1024;

  /**
   * One process of the tree: PIDs as seen in the tree's own PID namespace.
   *
   * @param command the kernel's name of the process (comm, up to 15 characters)
   * @param arguments its command line as it was in its memory; empty when the pages holding it were not dumped
   * @param memory bytes of its address space (every mapping) and of its pages in the dump
   */
  public record Process(long pid, long ppid, long pgid, long sid, int threads, String command, List<String> arguments,
      String executable, String cwd, String root, List<OpenFile> files, Memory memory) {}

  /**
   * One open file descriptor.
   *
   * @param type file, pipe, socket, eventfd, ... (CRIU's fd type, in lower case)
   * @param path a file's path, or what the descriptor is (pipe:[id], a socket's addresses)
   * @param socket the socket, for a socket
   */
  public record OpenFile(int fd, String type, String path, String mode, Long position, Socket socket) {}

  /**
   * @param protocol tcp, udp, tcp6, udp6, unix, ...
   * @param state the kernel's state: LISTEN, ESTABLISHED, ...
   * @param local address:port (or a unix socket's name; @ for an abstract one)
   * @param remote address:port of the peer; for unix sockets the peer's inode
   */
  public record Socket(String protocol, String type, String state, String local, String remote) {}

  public record Memory(long mappedBytes, long dumpedBytes) {}

  /** Reads the dump in {@code imagesDir}. */
  public static DumpContents read(Path imagesDir) throws IOException {
    Map<Long, ProtobufMessage> files = byId(ImageFile.read(imagesDir.resolve(RegularFiles.FILE_NAME), ImageFile.FILES_MAGIC));
    List<Process> processes = new ArrayList<>();
    for (ProtobufMessage entry : ImageFile.read(imagesDir.resolve(PSTREE), ImageFile.PSTREE_MAGIC)) {
      processes.add(process(imagesDir, entry, files));
    }
    if (processes.isEmpty()) {
      throw new IOException("the dump holds no process tree (" + PSTREE + ")");
    }
    long pages = 0;
    long all = 0;
    try (Stream<Path> images = Files.list(imagesDir)) {
      for (Path image : images.filter(Files::isRegularFile).toList()) {
        long size = Files.size(image);
        all += size;
        pages += image.getFileName().toString().startsWith("pages-") ? size : 0;
      }
    }
    // CRIU writes its statistics beside the images; container runtimes keep them beside their images folder.
    Path stats = Stream.of(imagesDir, imagesDir.toAbsolutePath().getParent()).filter(d -> d != null)
        .map(d -> d.resolve(DumpStats.FILE_NAME)).filter(Files::isRegularFile).findFirst().orElse(null);
    return new DumpContents(processes, pages, all, stats == null ? null : DumpStats.parse(Files.readAllBytes(stats)));
  }

  private static Process process(Path dir, ProtobufMessage pstree, Map<Long, ProtobufMessage> files) throws IOException {
    long pid = required(pstree, 1, PSTREE);
    ProtobufMessage core = first(ImageFile.read(dir.resolve("core-" + pid + ".img"), ImageFile.CORE_MAGIC))
        .orElseThrow(() -> new IOException("the dump holds no core-" + pid + ".img for process " + pid));
    // core_entry: tc = 3 (task_core_entry: comm = 6), ids = 4 (task_kobj_ids_entry: files_id = 2); CRIU
    // writes the ids into ids-PID.img instead.
    String comm = core.message(3).flatMap(tc -> tc.string(6)).orElse("?");
    Optional<Long> filesId = first(ImageFile.read(dir.resolve("ids-" + pid + ".img"), ImageFile.IDS_MAGIC))
        .or(() -> core.message(4)).flatMap(ids -> ids.number(2));
    // fs_entry: cwd_id = 1, root_id = 2
    Optional<ProtobufMessage> fs = first(ImageFile.read(dir.resolve("fs-" + pid + ".img"), ImageFile.FS_MAGIC));
    String cwd = fs.flatMap(f -> f.number(1)).map(id -> pathOf(files.get(id))).orElse(null);
    String root = fs.flatMap(f -> f.number(2)).map(id -> pathOf(files.get(id))).orElse(null);
    Optional<ProtobufMessage> mm = first(ImageFile.read(dir.resolve("mm-" + pid + ".img"), ImageFile.MM_MAGIC));
    // mm_entry: exe_file_id = 12
    String executable = mm.flatMap(m -> m.number(12)).map(id -> pathOf(files.get(id))).orElse(null);
    List<OpenFile> open = new ArrayList<>();
    if (filesId.isPresent()) {
      for (ProtobufMessage fd : ImageFile.read(dir.resolve("fdinfo-" + filesId.get() + ".img"), ImageFile.FDINFO_MAGIC)) {
        // fdinfo_entry: id = 1, flags = 2, type = 3, fd = 4
        open.add(openFile((int) fd.number(4, -1), fd.number(3, 0), files.get(fd.number(1, -1))));
      }
    }
    List<PagemapEntry> pagemap = pagemap(dir, pid);
    long mapped = mm.map(m -> m.messages(14).stream().mapToLong(v -> v.number(2, 0) - v.number(1, 0)).sum()).orElse(0L);
    long dumped = pagemap.stream().filter(PagemapEntry::inPagesFile).mapToLong(e -> e.pages * PAGE_SIZE).sum();
    List<String> arguments = mm.map(m -> arguments(dir, pagemap, m.number(8, 0), m.number(9, 0))).orElse(List.of());
    return new Process(pid, pstree.number(2, 0), pstree.number(3, 0), pstree.number(4, 0),
        Math.max(1, pstree.numbers(5).size()), comm, arguments, executable, cwd, root, open, new Memory(mapped, dumped));
  }

  /** Memory of one process whose pages are in its pages image: {@code bytes} from {@code address}. */
  public record MemoryRun(long address, long bytes) {}

  /**
   * Where the bytes of process {@code pid}'s pages image belong in its address space: the pagemap
   * entries whose pages are in that image, in image order (what a chunker needs to cut the image
   * at addresses). The image is {@code pages-<pagesId>.img}, named in the pagemap's head.
   */
  public record PagesImage(Path file, List<MemoryRun> runs) {}

  public static PagesImage pagesImage(Path imagesDir, long pid) throws IOException {
    List<PagemapEntry> pagemap = pagemap(imagesDir, pid);
    if (pagemap.isEmpty()) {
      throw new IOException("pagemap-" + pid + ".img in " + imagesDir + " lists no memory");
    }
    return new PagesImage(pagemap.get(0).pagesFile(), pagemap.stream().filter(PagemapEntry::inPagesFile)
        .map(e -> new MemoryRun(e.vaddr(), e.pages() * PAGE_SIZE)).toList());
  }

  /**
   * The pages image of every process of a dump whose pagemap puts memory in it, by pid order: what
   * a deduplicated checkpoint cuts into chunks. Images no process pagemap lists (shared memory's,
   * empty ones) are not among them.
   */
  public static List<PagesImage> pagesImages(Path imagesDir) throws IOException {
    List<PagesImage> images = new ArrayList<>();
    for (long pid : processPagemaps(imagesDir).keySet()) {
      List<PagemapEntry> pagemap = pagemap(imagesDir, pid);
      List<MemoryRun> runs = pagemap.stream().filter(PagemapEntry::inPagesFile)
          .map(e -> new MemoryRun(e.vaddr(), e.pages() * PAGE_SIZE)).toList();
      if (!runs.isEmpty()) {
        images.add(new PagesImage(pagemap.get(0).pagesFile(), runs));
      }
    }
    return images;
  }

  /**
   * A pagemap image as bytes (a runtime's checkpoint archive holds it as an entry): the number of
   * the pages image its head names ({@code pages-<pagesId>.img}) and the runs of memory in that
   * image, in image order; no runs when the pagemap lists none.
   */
  public record Pagemap(long pagesId, List<MemoryRun> runs) {}

  /** @param name the image's name, for what goes wrong */
  public static Pagemap pagemap(byte[] image, String name) throws IOException {
    List<ProtobufMessage> messages = ImageFile.parse(image, ImageFile.PAGEMAP_MAGIC, name);
    if (messages.isEmpty()) {
      throw new IOException(name + " has no head: not a pagemap CRIU wrote");
    }
    return new Pagemap(messages.get(0).number(1, 0), messages.subList(1, messages.size()).stream()
        .map(DumpContents::runInPagesFile).flatMap(Optional::stream).toList());
  }

  /**
   * The process pagemaps ({@code pagemap-<pid>.img}, not shared memory's) in {@code imagesDir} so
   * far, by pid; none while the folder does not exist.
   */
  public static SortedMap<Long, Path> processPagemaps(Path imagesDir) throws IOException {
    SortedMap<Long, Path> pagemaps = new TreeMap<>();
    try (var files = Files.newDirectoryStream(imagesDir, "pagemap-*.img")) {
      for (Path file : files) {
        Matcher pid = PROCESS_PAGEMAP.matcher(file.getFileName().toString());
        if (pid.matches()) {
          pagemaps.put(Long.parseLong(pid.group(1)), file);
        }
      }
    } catch (NoSuchFileException e) {
      // CRIU has not made the folder yet
    }
    return pagemaps;
  }

  /** One pagemap_entry, with where its pages start in its pages image (when they are there). */
  private record PagemapEntry(long vaddr, long pages, long flags, Path pagesFile, long offset) {
    boolean inPagesFile() {
      return (flags & PE_PRESENT) != 0 && (flags & PE_PARENT) == 0;
    }
  }

  /** pagemap-PID.img: a pagemap_head (pages_id = 1), then pagemap_entry (vaddr = 1, nr_pages = 5 or 2, flags = 4). */
  private static List<PagemapEntry> pagemap(Path dir, long pid) throws IOException {
    List<ProtobufMessage> messages = ImageFile.read(dir.resolve("pagemap-" + pid + ".img"), ImageFile.PAGEMAP_MAGIC);
    if (messages.isEmpty()) {
      return List.of();
    }
    Path pagesFile = pagesFile(dir, messages.get(0));
    List<PagemapEntry> entries = new ArrayList<>();
    long offset = 0;
    for (ProtobufMessage m : messages.subList(1, messages.size())) {
      PagemapEntry entry = entry(m, pagesFile, offset);
      entries.add(entry);
      offset += entry.inPagesFile() ? entry.pages() * PAGE_SIZE : 0;
    }
    return entries;
  }

  /** The pages image a pagemap's head (its first message) names. */
  static Path pagesFile(Path dir, ProtobufMessage head) {
    return dir.resolve("pages-" + head.number(1, 0) + ".img");
  }

  /** The memory of a pagemap entry (a message after the head) when its pages are in the pages image. */
  static Optional<MemoryRun> runInPagesFile(ProtobufMessage m) {
    PagemapEntry entry = entry(m, null, 0);
    return entry.inPagesFile() ? Optional.of(new MemoryRun(entry.vaddr(), entry.pages() * PAGE_SIZE)) : Optional.empty();
  }

  private static PagemapEntry entry(ProtobufMessage m, Path pagesFile, long offset) {
    long pages = m.number(5).orElse(m.number(2, 0));
    // Without flags (older images) pages are in this dump unless in_parent = 3 says otherwise.
    long flags = m.number(4).orElse(m.number(3, 0) != 0 ? PE_PARENT : PE_PRESENT);
    return new PagemapEntry(m.number(1, 0), pages, flags, pagesFile, offset);
  }

  /** The command line: NUL-separated strings between mm_arg_start and mm_arg_end, read from the dumped pages. */
  private static List<String> arguments(Path dir, List<PagemapEntry> pagemap, long start, long end) {
    if (end <= start || end - start > MAX_ARGUMENT_BYTES) {
      return List.of();
    }
    byte[] bytes = new byte[(int) (end - start)];
    for (long address = start; address < end; ) {
      long at = address;
      Optional<PagemapEntry> holding = pagemap.stream()
          .filter(e -> e.inPagesFile() && at >= e.vaddr && at < e.vaddr + e.pages * PAGE_SIZE).findFirst();
      if (holding.isEmpty()) {
        return List.of();
      }
      PagemapEntry e = holding.get();
      int n = (int) (Math.min(end, e.vaddr + e.pages * PAGE_SIZE) - at);
      try (RandomAccessFile pages = new RandomAccessFile(e.pagesFile.toFile(), "r")) {
        pages.seek(e.offset + (at - e.vaddr));
        pages.readFully(bytes, (int) (at - start), n);
      } catch (IOException ex) {
        return List.of(); // the pages image is shorter than its pagemap says: no arguments to show
      }
      address += n;
    }
    List<String> arguments = new ArrayList<>(List.of(new String(bytes, StandardCharsets.UTF_8).split("\0", -1)));
    while (!arguments.isEmpty() && arguments.get(arguments.size() - 1).isEmpty()) {
      arguments.remove(arguments.size() - 1);
    }
    return arguments;
  }

  // images/fdinfo.proto fd_types, by number.
  private static final String[] FD_TYPES = {"unknown", "file", "pipe", "fifo", "socket", "socket", "eventfd",
      "eventpoll", "inotify", "signalfd", "socket", "tty", "fanotify", "socket", "namespace", "tun", "external",
      "timerfd", "memfd", "bpfmap", "pidfd"};

  private static OpenFile openFile(int fd, long type, ProtobufMessage file) {
    String kind = type >= 0 && type < FD_TYPES.length ? FD_TYPES[(int) type] : "type " + type;
    if (file == null) {
      return new OpenFile(fd, kind, null, null, null, null);
    }
    // file_entry: reg = 3, isk = 4, psk = 6, nlsk = 7, usk = 16, fifo = 17, pipe = 18, memfd = 20
    Optional<ProtobufMessage> reg = file.message(3);
    if (reg.isPresent()) {
      // reg_file_entry: flags = 2, pos = 3
      long flags = reg.get().number(2, 0);
      String mode = switch ((int) (flags & 3)) {
        case 0 -> "r";
        case 1 -> "w";
        default -> "rw";
      };
      return new OpenFile(fd, kind, pathOf(file), mode, reg.get().number(3, 0), null);
    }
    Optional<Socket> socket = file.message(4).map(DumpContents::inetSocket)
        .or(() -> file.message(16).map(DumpContents::unixSocket))
        .or(() -> file.message(6).map(p -> new Socket("packet", null, null, null, null)))
        .or(() -> file.message(7).map(n -> new Socket("netlink", null, null, null, null)));
    if (socket.isPresent()) {
      Socket s = socket.get();
      String path = s.protocol() + (s.local() == null ? "" : " " + s.local())
          + (s.remote() == null ? "" : " -> " + s.remote()) + (s.state() == null ? "" : " " + s.state());
      return new OpenFile(fd, "socket", path, null, null, s);
    }
    // pipe_entry and fifo_entry: pipe_id = 2
    Optional<Long> pipe = file.message(18).or(() -> file.message(17)).flatMap(p -> p.number(2));
    if (pipe.isPresent()) {
      return new OpenFile(fd, kind, kind + ":[" + pipe.get() + "]", null, null, null);
    }
    // memfd_file_entry: name = 2... kept as its type; what matters is that it is there.
    return new OpenFile(fd, kind, null, null, null, null);
  }

  private static final Map<Long, String> STATES = Map.ofEntries(Map.entry(1L, "ESTABLISHED"), Map.entry(2L, "SYN_SENT"),
      Map.entry(3L, "SYN_RECV"), Map.entry(4L, "FIN_WAIT1"), Map.entry(5L, "FIN_WAIT2"), Map.entry(6L, "TIME_WAIT"),
      Map.entry(7L, "CLOSE"), Map.entry(8L, "CLOSE_WAIT"), Map.entry(9L, "LAST_ACK"), Map.entry(10L, "LISTEN"),
      Map.entry(11L, "CLOSING"));
  private static final Map<Long, String> TYPES = Map.of(1L, "stream", 2L, "dgram", 3L, "raw", 5L, "seqpacket");

  /** inet_sk_entry: family = 3, type = 4, proto = 5, state = 6, src_port = 7, dst_port = 8, src_addr = 11, dst_addr = 12. */
  private static Socket inetSocket(ProtobufMessage sk) {
    boolean v6 = sk.number(3, 0) == 10; // AF_INET6
    long proto = sk.number(5, 0);
    String protocol = (proto == 6 ? "tcp" : proto == 17 ? "udp" : proto == 132 ? "sctp" : "ip" + proto) + (v6 ? "6" : "");
    String local = address(sk.numbers(11), v6) + ":" + sk.number(7, 0);
    List<Long> dst = sk.numbers(12);
    boolean connected = sk.number(8, 0) != 0 || dst.stream().anyMatch(a -> a != 0);
    return new Socket(protocol, TYPES.get(sk.number(4, 0)), STATES.get(sk.number(6, 0)), local,
        connected ? address(dst, v6) + ":" + sk.number(8, 0) : null);
  }

  /** unix_sk_entry: type = 3, state = 4, peer = 8, name = 11 (an abstract name starts with NUL). */
  private static Socket unixSocket(ProtobufMessage sk) {
    String name = sk.bytes(11).filter(b -> b.length > 0)
        .map(b -> b[0] == 0 ? "@" + new String(b, 1, b.length - 1, StandardCharsets.UTF_8)
            : new String(b, StandardCharsets.UTF_8))
        .orElse(null);
    long peer = sk.number(8, 0);
    return new Socket("unix", TYPES.get(sk.number(3, 0)), STATES.get(sk.number(4, 0)), name,
        peer == 0 ? null : "inode " + peer);
  }

  /** CRIU keeps addresses as the kernel's 32-bit words: their bytes in memory order are the address. */
  private static String address(List<Long> words, boolean v6) {
    ByteBuffer bytes = ByteBuffer.allocate(v6 ? 16 : 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < (v6 ? 4 : 1); i++) {
      bytes.putInt(i < words.size() ? words.get(i).intValue() : 0);
    }
    try {
      String text = InetAddress.getByAddress(bytes.array()).getHostAddress();
      return v6 ? "[" + text + "]" : text;
    } catch (UnknownHostException e) {
      throw new IllegalStateException(e); // not thrown for 4 or 16 bytes
    }
  }

  /** A reg_file_entry's name (field 6); CRIU drops the leading slash in some versions. */
  private static String pathOf(ProtobufMessage file) {
    return file == null ? null : file.message(3).flatMap(reg -> reg.string(6))
        .map(name -> name.startsWith("/") ? name : "/" + name).orElse(null);
  }

  /** files.img entries by their id (file_entry: id = 2). */
  private static Map<Long, ProtobufMessage> byId(List<ProtobufMessage> entries) {
    Map<Long, ProtobufMessage> byId = new HashMap<>();
    for (ProtobufMessage e : entries) {
      e.number(2).ifPresent(id -> byId.put(id, e));
    }
    return byId;
  }

  private static Optional<ProtobufMessage> first(List<ProtobufMessage> messages) {
    return messages.isEmpty() ? Optional.empty() : Optional.of(messages.get(0));
  }

  private static long required(ProtobufMessage m, int field, String image) throws IOException {
    return m.number(field).orElseThrow(() -> new IOException(image + " has an entry without field " + field));
  }
}
