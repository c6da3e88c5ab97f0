package dev.stasis.operator.placement;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Numbers flag names (CPU flags, CRIU features) so that "has every flag of the source" is a bit
 * operation: placing a checkpoint compares it with every node, and a cluster has hundreds.
 * Shared by the reconciler's threads, hence synchronized; it only grows, and only by flag names
 * never seen before.
 */
final class FlagVocabulary {
  private final Map<String, Integer> numbers = new HashMap<>();
  private final List<String> names = new ArrayList<>();

  synchronized BitSet bits(Collection<String> flags) {
    BitSet bits = new BitSet();
    if (flags != null) {
      for (String flag : flags) {
        bits.set(numbers.computeIfAbsent(flag, f -> {
          names.add(f);
          return names.size() - 1;
        }));
      }
    }
    return bits;
  }

  /** The flags of {@code required} that {@code present} lacks, sorted; empty when it has all. */
  synchronized List<String> missing(BitSet required, BitSet present) {
    BitSet missing = (BitSet) required.clone();
    missing.andNot(present);
    if (missing.isEmpty()) {
      return List.of();
    }
    List<String> result = new ArrayList<>(missing.cardinality());
    missing.stream().forEach(i -> result.add(names.get(i)));
    result.sort(null);
    return result;
  }
}
