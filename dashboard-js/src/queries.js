// The bodies sent to POST /api/v2/query, one builder per part of the page. Pure: a view state,
// the site and the resolved range in, a request body out.
import { timeGrain } from './dates.js';

/** The headline metrics, in the order shown. */
export const HEADLINE = ['visitors', 'visits', 'pageviews', 'views_per_visit', 'bounce_rate', 'visit_duration'];

function base(state, resolved) {
  const body = { site_id: state.site, date_range: resolved.api };
  if (state.filters.length) body.filters = state.filters.map((f) => [f[0], f[1], [...f[2]]]);
  return body;
}

function comparisons(state) {
  return state.compare === 'none' ? undefined : { mode: state.compare };
}

/**
 * The headline figures. `views_per_visit` is left out under a page filter: the engine refuses
 * it there (page views per visit of the visits that saw one page is not a number anyone wants).
 */
export function headlineQuery(state, resolved) {
  const pageFilter = state.filters.some((f) => f[1] === 'event:page');
  const body = { ...base(state, resolved), metrics: HEADLINE.filter((m) => !(pageFilter && m === 'views_per_visit')) };
  const cmp = comparisons(state);
  if (cmp) body.include = { comparisons: cmp };
  return body;
}

/** The time series of visitors and page views: by hour for one day, by day otherwise. */
export function chartQuery(state, resolved) {
  return {
    ...base(state, resolved),
    metrics: ['visitors', 'pageviews'],
    dimensions: [timeGrain(resolved)],
    include: { time_labels: true },
  };
}

/**
 * Visitors of the last 30 minutes. The engine answers realtime from the raw events without
 * filters (it refuses them), so this one query ignores the dashboard's filters; the page says so.
 */
export function realtimeQuery(state) {
  return { site_id: state.site, metrics: ['visitors'], date_range: 'realtime' };
}

/**
 * One card's rows: its dimensions, its metrics plus the share (`percentage`) its bar shows,
 * `limit` rows from `offset`, the total row count for paging, and the comparison when one is on.
 */
export function cardQuery(card, state, resolved, { limit = 10, offset = 0 } = {}) {
  const metrics = [...card.metrics];
  if (!metrics.includes(card.bar)) metrics.push(card.bar);
  const body = {
    ...base(state, resolved),
    metrics,
    dimensions: [...card.dimensions],
    order_by: [[card.metrics[0], 'desc']],
    include: { total_rows: true },
    pagination: { limit, offset },
  };
  const cmp = comparisons(state);
  if (cmp) body.include.comparisons = cmp;
  return body;
}

/** A card as CSV: every row (up to the API's 10,000), no comparison. */
export function csvQuery(card, state, resolved) {
  const body = cardQuery(card, { ...state, compare: 'none' }, resolved, { limit: 10000, offset: 0 });
  delete body.include;
  return body;
}

/** A file name for a card's CSV: tally-<site>-<card>-<from>_<to>.csv. */
export function csvName(siteName, cardId, from, to) {
  const slug = String(siteName).toLowerCase().normalize('NFKD').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'site';
  return `tally-${slug}-${cardId}-${from === to ? from : from + '_' + to}.csv`;
}

