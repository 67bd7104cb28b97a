import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatNumber, formatPercent, formatDuration, formatMetric, formatChange, formatDay, formatRange, formatTimeLabel } from '../src/format.js';
import { seriesOf, labelSeconds } from '../src/series.js';

const nb = (s) => s.replace(/\u00a0|\u202f/g, ' ');

test('numbers in English and German', () => {
  assert.equal(formatNumber('en', 1234567), '1,234,567');
  assert.equal(formatNumber('de', 1234567), '1.234.567');
  assert.equal(formatNumber('de', 2.48), '2,48');
  assert.equal(formatNumber('en', null), '–');
  assert.equal(nb(formatPercent('de', 12.5)), '12,5 %');
  assert.equal(formatPercent('en', 12.5), '12.5%');
});

test('durations', () => {
  assert.equal(formatDuration('en', 0), '0s');
  assert.equal(formatDuration('en', 45.4), '45s');
  assert.equal(nb(formatDuration('en', 88)), '1m 28s');
  assert.equal(nb(formatDuration('en', 3725)), '1h 02m');
  assert.equal(nb(formatDuration('de', 88)), '1 min 28 s');
  assert.equal(nb(formatDuration('de', 3725)), '1 h 02 min');
  assert.ok(!formatDuration('de', 28).includes(' '), 'no breakable space between number and unit');
  assert.equal(formatDuration('en', null), '–');
});

test('metrics are shown by kind', () => {
  assert.equal(formatMetric('en', 'bounce_rate', 40), '40%');
  assert.equal(nb(formatMetric('en', 'visit_duration', 61)), '1m 01s');
  assert.equal(formatMetric('en', 'visitors', 1500), '1,500');
});

test('changes: percent for counts, points for rates; a lower bounce rate is good', () => {
  assert.deepEqual(formatChange('en', 'visitors', 12), { text: '+12%', good: true });
  assert.deepEqual(formatChange('en', 'visitors', -3.25), { text: '-3.3%', good: false });
  assert.deepEqual(formatChange('en', 'bounce_rate', -3), { text: '-3 pp', good: true });
  assert.equal(nb(formatChange('de', 'visitors', 12).text), '+12 %');
  assert.equal(nb(formatChange('de', 'bounce_rate', 2).text), '+2 Pp.');
  assert.equal(formatChange('en', 'visitors', 0).good, null);
  assert.equal(formatChange('en', 'visitors', null), null);
});

test('dates', () => {
  assert.equal(formatDay('en', '2026-11-26'), '26 Nov 2026');
  assert.equal(formatDay('de', '2026-11-26'), '26.11.2026');
  assert.equal(formatRange('en', '2026-11-01', '2026-11-26'), '1 Nov 2026 – 26 Nov 2026');
  assert.equal(formatRange('de', '2026-11-26', '2026-11-26'), '26.11.2026');
  assert.equal(formatTimeLabel('de', '2026-11-26 13:00:00'), '26.11.2026 13:00');
});

test('chart series: every label, zero for a missing bucket, nothing after now', () => {
  const answer = {
    meta: { time_labels: ['2026-11-26 10:00:00', '2026-11-26 11:00:00', '2026-11-26 12:00:00'] },
    results: [{ dimensions: ['2026-11-26 10:00:00'], metrics: [3, 5] }],
  };
  assert.deepEqual(seriesOf(answer, '2026-11-26 11:00:00'), { labels: answer.meta.time_labels, visitors: [3, 0, null], pageviews: [5, 0, null] });
  assert.deepEqual(seriesOf(answer).visitors, [3, 0, 0]);
  assert.equal(labelSeconds('2026-11-26 10:00:00'), Date.UTC(2026, 10, 26, 10) / 1000);
  assert.equal(labelSeconds('2026-11-26'), Date.UTC(2026, 10, 26) / 1000);
});
