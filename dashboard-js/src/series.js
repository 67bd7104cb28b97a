// The chart's data from an API answer: pure, so it can be tested without a canvas.

/** Seconds since the epoch of an API time label, read as UTC (labels are site time). */
export function labelSeconds(label) {
  return Date.parse(label.replace(' ', 'T') + (label.length > 10 ? 'Z' : 'T00:00:00Z')) / 1000;
}

/**
 * The chart's data from an API answer: every bucket of `meta.time_labels`, zero where the
 * answer has no row, and `null` (no line) for buckets after `until` (the current hour or day:
 * "this month" and "today" have buckets still to come). Returns {labels, visitors, pageviews}.
 */
export function seriesOf(answer, until = null) {
  const labels = answer.meta?.time_labels ?? answer.results.map((r) => r.dimensions[0]);
  const byLabel = new Map(answer.results.map((r) => [r.dimensions[0], r.metrics]));
  const value = (l, i) => (until !== null && l > until ? null : byLabel.get(l)?.[i] ?? 0);
  return {
    labels,
    visitors: labels.map((l) => value(l, 0)),
    pageviews: labels.map((l) => value(l, 1)),
  };
}
