// The report cards: which dimension each one breaks down by, which metrics it shows, and which
// dimension a click on one of its rows filters by. Grouped in tabs, as Plausible and Matomo do.
//
// `dimensions` are queried; the row's label is `dimensions[label]` and the filter value is
// `dimensions[filterValue]` of dimension `filter`. Countries and regions are shown by name but
// filtered by their code: the daily aggregates store the code, and a name filter over more than
// the week of per-visit data is refused by the engine.

/** @typedef {{id: string, tab: string, dimensions: string[], label: number, filter: string, filterValue: number, metrics: string[], bar: string}} Card */

function card(id, tab, dimension, metrics = ['visitors'], extra = {}) {
  return { id, tab, dimensions: [dimension], label: 0, filter: dimension, filterValue: 0, metrics, bar: 'percentage', ...extra };
}

/** @type {Card[]} */
export const CARDS = [
  card('pages', 'pages', 'event:page', ['visitors', 'pageviews']),
  card('entry_pages', 'pages', 'visit:entry_page', ['visitors', 'visits']),
  card('exit_pages', 'pages', 'visit:exit_page', ['visitors', 'visits']),
  card('page_load', 'pages', 'event:page_load', ['visitors', 'pageviews']),
  card('channels', 'sources', 'visit:channel'),
  card('referrers', 'sources', 'visit:source'),
  card('keywords', 'sources', 'visit:referrer_keyword'),
  card('campaigns', 'sources', 'visit:utm_campaign'),
  card('countries', 'locations', 'visit:country', ['visitors'], { dimensions: ['visit:country', 'visit:country_name'], label: 1 }),
  card('regions', 'locations', 'visit:region', ['visitors'], { dimensions: ['visit:region', 'visit:region_name'], label: 1 }),
  // A city's value is its name (tally has no GeoNames ids), so visit:city filters by the name.
  card('cities', 'locations', 'visit:city_name', ['visitors'], { filter: 'visit:city' }),
  card('devices', 'devices', 'visit:device'),
  card('browsers', 'devices', 'visit:browser'),
  card('os', 'devices', 'visit:os'),
  card('screens', 'devices', 'visit:screen'),
  card('languages', 'devices', 'visit:language'),
  card('visitor_type', 'devices', 'visit:visitor_type'),
  card('events', 'behaviour', 'event:category', ['visitors', 'events']),
  card('goals', 'behaviour', 'event:goal', ['visitors', 'events', 'conversion_rate'], { bar: 'conversion_rate' }),
  card('outlinks', 'behaviour', 'event:outlink', ['visitors', 'events']),
  card('downloads', 'behaviour', 'event:download', ['visitors', 'events']),
  card('site_search', 'behaviour', 'event:search', ['visitors', 'events']),
];

/** The cards of one tab. */
export function cardsOf(tab) {
  return CARDS.filter((c) => c.tab === tab);
}

/** The card whose rows filter by `dimension` (for a chip's label), if any. */
export function cardFilteringBy(dimension) {
  return CARDS.find((c) => c.filter === dimension);
}
