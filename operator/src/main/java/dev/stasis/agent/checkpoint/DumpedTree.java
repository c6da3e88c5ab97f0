package dev.stasis.agent.checkpoint;

import dev.stasis.agent.process.NodeProcess;
import dev.stasis.agent.process.ProcessTree;
import dev.stasis.criu.Pstree;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The processes a dump left stopped ({@code --leave-stopped}): exactly those CRIU dumped, found
 * on the node after the dump, when the stopped tree can neither fork nor lose a member. These are
 * the processes ended once the checkpoint is stored, or resumed if it is not; each is signalled by
 * its identity ({@link NodeProcess#signal}).
 */
final class DumpedTree {
  private static final Logger log = LoggerFactory.getLogger(DumpedTree.class);

  private final NodeProcess root;
  private final List<NodeProcess> members;

  private DumpedTree(NodeProcess root, List<NodeProcess> members) {
    this.root = root;
    this.members = List.copyOf(members);
  }

  /**
   * The processes under {@code root} that CRIU's {@code pstree.img} in {@code imagesDir} names.
   * CRIU records PIDs as the dumped tree's own PID namespace sees them (1 for a namespace init),
   * so each process found on the node is matched by its PID in the root's namespace.
   */
  static DumpedTree of(Path imagesDir, NodeProcess root) throws IOException {
    Set<Long> dumped = Pstree.read(imagesDir).stream().map(Pstree.Entry::pid).collect(Collectors.toSet());
    int rootLevel = root.namespacePids().size() - 1;
    List<NodeProcess> members = new ArrayList<>();
    for (long pid : ProcessTree.members(root.pid())) {
      NodeProcess.find(pid).ifPresent(process -> {
        List<Long> namespacePids = process.namespacePids();
        if (namespacePids.size() > rootLevel && dumped.contains(namespacePids.get(rootLevel))) {
          members.add(process);
        }
      });
    }
    if (members.size() != dumped.size()) {
      log.warn("CRIU dumped {} processes under PID {}, {} of them were found on the node", dumped.size(), root.pid(),
          members.size());
    }
    return new DumpedTree(root, members);
  }

  /** A stopped tree whose dump left no process list (CRIU died early): every member under its root. */
  static DumpedTree stoppedUnder(NodeProcess root) {
    List<NodeProcess> members = new ArrayList<>();
    for (long pid : ProcessTree.members(root.pid())) {
      NodeProcess.find(pid).filter(NodeProcess::isStopped).ifPresent(members::add);
    }
    return new DumpedTree(root, members);
  }

  static DumpedTree none() {
    return new DumpedTree(null, List.of());
  }

  NodeProcess root() {
    return root;
  }

  List<NodeProcess> members() {
    return members;
  }

  /** The root first: ending a PID namespace's init ends the rest. Returns how many got it. */
  int signal(NodeProcess.Signal signal) {
    int reached = 0;
    for (NodeProcess member : members) {
      reached += member.signal(signal) ? 1 : 0;
    }
    return reached;
  }
}
