package dev.stasis.bench;

/**
 * What a figure has to reach: Stasis at most {@code maxRatio} times the baseline, or (for figures
 * without a baseline) at most {@code maxValue} in the figure's unit.
 */
record Target(Double maxRatio, Double maxValue) {
  static Target ratio(double max) {
    return new Target(max, null);
  }

  static Target atMost(double max) {
    return new Target(null, max);
  }

  boolean isMetBy(Figure figure) {
    return maxRatio != null ? figure.ratio() <= maxRatio : figure.stasis().median() <= maxValue;
  }

  String describe(String unit) {
    return maxRatio != null ? String.format("≤ %.2f× by hand", maxRatio) : String.format("< %s %s", Figure.format(maxValue), unit);
  }
}
