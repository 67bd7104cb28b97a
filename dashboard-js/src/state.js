// The view as a URL query string and back: site, range (and custom days), comparison, filters,
// the open tab and the page (dashboard or settings). Reload, bookmarks and back/forward all
// go through these two functions.
import { RANGES, isDay } from './dates.js';

export const COMPARISONS = ['none', 'previous_period', 'year_over_year'];
export const TABS = ['pages', 'sources', 'locations', 'devices', 'behaviour'];
const DIMENSION_RE = /^(event|visit):[a-z_]+$/;

/**
 * The default view for `sites`: the first site, `range` (30 days; today in the demo, where a
 * newcomer watches their own visit arrive), no comparison, no filters.
 */
export function defaultState(sites, range = '30d') {
  return { site: sites[0]?.id ?? 1, range, from: null, to: null, compare: 'none', filters: [], tab: 'pages', view: 'dashboard' };
}

/**
 * Reads a view from a query string (`location.search`). Anything unknown or malformed is
 * dropped in favour of the default, so a hand-edited URL cannot break the page.
 * Filters are `f=<dimension>|<value>` (repeatable): `["is", dimension, [value]]`.
 */
export function parseState(search, sites, firstRange = '30d') {
  const p = new URLSearchParams(search);
  const s = defaultState(sites, firstRange);
  const site = Number(p.get('site'));
  if (sites.some((x) => x.id === site)) s.site = site;
  const range = p.get('range');
  if (RANGES.includes(range)) s.range = range;
  if (s.range === 'custom') {
    const from = p.get('from');
    const to = p.get('to');
    if (isDay(from) && isDay(to)) {
      s.from = from <= to ? from : to;
      s.to = from <= to ? to : from;
    } else s.range = '30d';
  }
  const cmp = p.get('compare');
  if (COMPARISONS.includes(cmp)) s.compare = cmp;
  const tab = p.get('tab');
  if (TABS.includes(tab)) s.tab = tab;
  if (p.get('view') === 'settings') s.view = 'settings';
  for (const f of p.getAll('f')) {
    const bar = f.indexOf('|');
    if (bar < 0) continue;
    const dim = f.slice(0, bar);
    const value = f.slice(bar + 1);
    if (!DIMENSION_RE.test(dim)) continue;
    if (!s.filters.some((x) => x[1] === dim && x[2][0] === value)) s.filters.push(['is', dim, [value]]);
  }
  return s;
}

/** Writes a view as a query string (with `?`, or `""` for the default view of one site). */
export function stateToSearch(s, sites, range = '30d') {
  const p = new URLSearchParams();
  const d = defaultState(sites, range);
  if (s.site !== d.site || sites.length > 1) p.set('site', String(s.site));
  if (s.range !== d.range) p.set('range', s.range);
  if (s.range === 'custom') {
    p.set('from', s.from);
    p.set('to', s.to);
  }
  if (s.compare !== 'none') p.set('compare', s.compare);
  for (const f of s.filters) p.append('f', `${f[1]}|${f[2][0]}`);
  if (s.tab !== d.tab) p.set('tab', s.tab);
  if (s.view === 'settings') p.set('view', 'settings');
  const q = p.toString();
  return q ? '?' + q : '';
}

/** `s` with the filter `["is", dimension, [value]]` added (once). */
export function addFilter(s, dimension, value) {
  if (s.filters.some((f) => f[1] === dimension && f[2][0] === value)) return s;
  return { ...s, filters: [...s.filters, ['is', dimension, [value]]] };
}

/** `s` without its `i`-th filter. */
export function removeFilter(s, i) {
  return { ...s, filters: s.filters.filter((_, j) => j !== i) };
}
