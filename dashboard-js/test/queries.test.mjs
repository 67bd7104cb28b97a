import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { headlineQuery, chartQuery, realtimeQuery, cardQuery, csvQuery, csvName, HEADLINE } from '../src/queries.js';
import { CARDS, cardsOf } from '../src/cards.js';
import { TABS } from '../src/state.js';
import { resolveRange } from '../src/dates.js';

const today = '2026-11-26';
const base = { site: 1, range: '30d', from: null, to: null, compare: 'none', filters: [], tab: 'pages', view: 'dashboard' };
const r30 = resolveRange('30d', today);
const rDay = resolveRange('day', today);
const rCustom = resolveRange('custom', today, '2026-11-01', '2026-11-07');

test('headline: six metrics, no include without a comparison', () => {
  assert.deepEqual(headlineQuery(base, r30), { site_id: 1, date_range: '30d', metrics: HEADLINE });
});

test('headline: the comparison asked for, with the filters', () => {
  const s = { ...base, compare: 'previous_period', filters: [['is', 'visit:browser', ['Firefox']]] };
  assert.deepEqual(headlineQuery(s, rCustom), {
    site_id: 1,
    date_range: ['2026-11-01', '2026-11-07'],
    filters: [['is', 'visit:browser', ['Firefox']]],
    metrics: HEADLINE,
    include: { comparisons: { mode: 'previous_period' } },
  });
  assert.deepEqual(headlineQuery({ ...base, compare: 'year_over_year' }, r30).include, { comparisons: { mode: 'year_over_year' } });
});

test('headline: no views_per_visit under a page filter (the engine refuses it)', () => {
  const q = headlineQuery({ ...base, filters: [['is', 'event:page', ['/']]] }, r30);
  assert.ok(!q.metrics.includes('views_per_visit'));
  assert.equal(q.metrics.length, 5);
});

test('chart: hourly for a day, daily otherwise, with every time label', () => {
  assert.deepEqual(chartQuery(base, rDay), { site_id: 1, date_range: 'day', metrics: ['visitors', 'pageviews'], dimensions: ['time:hour'], include: { time_labels: true } });
  assert.deepEqual(chartQuery(base, r30).dimensions, ['time:day']);
  assert.deepEqual(chartQuery({ ...base, filters: [['is', 'visit:os', ['Linux']]] }, r30).filters, [['is', 'visit:os', ['Linux']]]);
});

test('realtime: the last 30 minutes, without filters (the engine refuses them there)', () => {
  assert.deepEqual(realtimeQuery({ ...base, site: 3, filters: [['is', 'visit:os', ['Linux']]] }), { site_id: 3, metrics: ['visitors'], date_range: 'realtime' });
});

test('a card: its dimension, metrics plus the share, top 10, total rows, comparison', () => {
  const pages = CARDS.find((c) => c.id === 'pages');
  assert.deepEqual(cardQuery(pages, { ...base, compare: 'previous_period', filters: [['is', 'visit:country', ['DE']]] }, r30), {
    site_id: 1,
    date_range: '30d',
    filters: [['is', 'visit:country', ['DE']]],
    metrics: ['visitors', 'pageviews', 'percentage'],
    dimensions: ['event:page'],
    order_by: [['visitors', 'desc']],
    include: { total_rows: true, comparisons: { mode: 'previous_period' } },
    pagination: { limit: 10, offset: 0 },
  });
  const more = cardQuery(pages, base, r30, { limit: 50, offset: 100 });
  assert.deepEqual(more.pagination, { limit: 50, offset: 100 });
  assert.deepEqual(more.include, { total_rows: true });
});

test('countries are shown by name and filtered by code; goals carry the conversion rate', () => {
  const countries = CARDS.find((c) => c.id === 'countries');
  assert.deepEqual(cardQuery(countries, base, r30).dimensions, ['visit:country', 'visit:country_name']);
  assert.equal(countries.filter, 'visit:country');
  assert.equal(countries.dimensions[countries.filterValue], 'visit:country');
  const goals = CARDS.find((c) => c.id === 'goals');
  assert.deepEqual(cardQuery(goals, base, r30).metrics, ['visitors', 'events', 'conversion_rate']);
});

test('CSV: every row, no comparison', () => {
  const q = csvQuery(CARDS[0], { ...base, compare: 'year_over_year' }, r30);
  assert.deepEqual(q.pagination, { limit: 10000, offset: 0 });
  assert.equal(q.include, undefined);
  assert.equal(csvName('Demo Site Ü', 'pages', '2026-11-01', '2026-11-07'), 'tally-demo-site-u-pages-2026-11-01_2026-11-07.csv');
  assert.equal(csvName('***', 'goals', '2026-11-26', '2026-11-26'), 'tally-site-goals-2026-11-26.csv');
});

test('every card uses dimensions and metrics the API knows, and sits in a tab', () => {
  const api = JSON.parse(readFileSync(new URL('../../src/api/openapi.json', import.meta.url), 'utf8')).components.schemas;
  const dims = new Set(api.Dimension.enum);
  const metrics = new Set(api.Metric.enum);
  for (const c of CARDS) {
    for (const d of [...c.dimensions, c.filter]) assert.ok(dims.has(d), `${c.id}: ${d}`);
    for (const m of [...c.metrics, c.bar]) assert.ok(metrics.has(m), `${c.id}: ${m}`);
    assert.ok(TABS.includes(c.tab), c.id);
  }
  for (const tab of TABS) assert.ok(cardsOf(tab).length > 0, tab);
  assert.equal(new Set(CARDS.map((c) => c.id)).size, CARDS.length);
  assert.equal(CARDS.length, 22);
});
