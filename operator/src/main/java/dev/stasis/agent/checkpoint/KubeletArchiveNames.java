package dev.stasis.agent.checkpoint;

import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.Collection;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The archives the kubelet wrote for one checkpoint attempt, told by their names:
 * {@code checkpoint-<pod>_<namespace>-<container>-<RFC 3339 time>.tar}. Names and namespaces may hold
 * '-', so a prefix such as {@code checkpoint-web_a-} also matches pod web of namespace a-b; only
 * the exact containers, and a time from the attempt on, tell them apart (what still collides is a
 * same-named pod in namespace {@code <ns>-<x>} with a container {@code <c>} while this one has a
 * container {@code <x>-<c>}, checkpointed in the same seconds).
 */
final class KubeletArchiveNames {
  private static final String RFC_3339 = "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(?:\\.\\d+)?(?:Z|[+-]\\d{2}:\\d{2})";

  private KubeletArchiveNames() {}

  /**
   * @param containers the containers the attempt asked the kubelet to checkpoint
   * @param notBefore when the attempt started (the kubelet stamps whole seconds)
   */
  static Predicate<String> of(String namespace, String pod, Collection<String> containers, Instant notBefore) {
    Pattern name = Pattern.compile("checkpoint-" + Pattern.quote(pod) + "_" + Pattern.quote(namespace) + "-(?:"
        + containers.stream().map(Pattern::quote).collect(Collectors.joining("|")) + ")-(" + RFC_3339 + ")\\.tar");
    return fileName -> {
      Matcher m = name.matcher(fileName);
      if (containers.isEmpty() || !m.matches()) {
        return false;
      }
      try {
        return !OffsetDateTime.parse(m.group(1)).toInstant().isBefore(notBefore);
      } catch (DateTimeParseException e) {
        return false;
      }
    };
  }
}
