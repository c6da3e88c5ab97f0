package dev.stasis.bench;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * One reported figure: Stasis' samples, the by-hand pipeline's samples of the same quantity in the
 * same run (absent where there is no by-hand equivalent), and the target, if the issue sets one.
 *
 * @param unit "s" for times, "MiB" for sizes and memory
 * @param details medians of the stages behind the figure, for explaining it (stage → value in unit)
 */
record Figure(String name, String unit, Samples stasis, Samples baseline, Target target, Map<String, Double> details) {

  Double ratio() {
    return baseline == null ? null : stasis.median() / baseline.median();
  }

  Boolean met() {
    return target == null ? null : target.isMetBy(this);
  }

  /** The JSON object for results.json: for times the keys stasis_s / baseline_s. */
  Map<String, Object> toJson() {
    String suffix = unit.equals("s") ? "_s" : "_" + unit.toLowerCase(Locale.ROOT);
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("name", name);
    json.put("stasis" + suffix, round(stasis.median()));
    json.put("baseline" + suffix, baseline == null ? null : round(baseline.median()));
    json.put("ratio", ratio() == null ? null : round(ratio()));
    json.put("target", target == null ? null : target.describe(unit));
    json.put("met", met());
    json.put("repetitions", stasis.count());
    json.put("stasis_spread", spread(stasis));
    json.put("baseline_spread", baseline == null ? null : spread(baseline));
    if (!details.isEmpty()) {
      Map<String, Double> rounded = new LinkedHashMap<>();
      details.forEach((k, v) -> rounded.put(k, round(v)));
      json.put("details", rounded);
    }
    return json;
  }

  private static Map<String, Double> spread(Samples s) {
    Map<String, Double> spread = new LinkedHashMap<>();
    spread.put("min", round(s.min()));
    spread.put("max", round(s.max()));
    return spread;
  }

  static double round(double v) {
    return Math.round(v * 1000) / 1000.0;
  }

  static String format(double v) {
    return v >= 100 ? String.format(Locale.ROOT, "%.0f", v) : v >= 10 ? String.format(Locale.ROOT, "%.1f", v)
        : String.format(Locale.ROOT, "%.2f", v);
  }
}
