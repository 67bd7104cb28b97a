import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseState, stateToSearch, defaultState, addFilter, removeFilter } from '../src/state.js';

const one = [{ id: 1, name: 'A', timezone: 'UTC' }];
const two = [...one, { id: 7, name: 'B', timezone: 'Europe/Berlin' }];

test('the default view has an empty query string', () => {
  assert.equal(stateToSearch(defaultState(one), one), '');
  assert.deepEqual(parseState('', one), defaultState(one));
});

test('a view survives the round trip through the URL', () => {
  const s = { site: 7, range: 'custom', from: '2026-11-01', to: '2026-11-20', compare: 'year_over_year', filters: [['is', 'visit:browser', ['Firefox']], ['is', 'event:page', ['/a|b & c?d=1']]], tab: 'locations', view: 'dashboard' };
  const search = stateToSearch(s, two);
  assert.match(search, /^\?site=7&range=custom&from=2026-11-01&to=2026-11-20&compare=year_over_year&f=/);
  assert.deepEqual(parseState(search, two), s);
});

test('the site is always in the URL when there are several', () => {
  assert.equal(stateToSearch(defaultState(two), two), '?site=1');
});

test('settings view round-trips', () => {
  const s = { ...defaultState(one), view: 'settings' };
  assert.equal(stateToSearch(s, one), '?view=settings');
  assert.equal(parseState('?view=settings', one).view, 'settings');
});

test('malformed or unknown parts fall back to the default', () => {
  const s = parseState('?site=99&range=5y&compare=x&tab=nope&f=nobar&f=bad dim|x&f=visit:os|Linux&f=visit:os|Linux', two);
  assert.equal(s.site, 1);
  assert.equal(s.range, '30d');
  assert.equal(s.compare, 'none');
  assert.equal(s.tab, 'pages');
  assert.deepEqual(s.filters, [['is', 'visit:os', ['Linux']]]);
  assert.equal(parseState('?range=custom&from=2026-13-01&to=2026-11-02', one).range, '30d');
  const swapped = parseState('?range=custom&from=2026-11-05&to=2026-11-02', one);
  assert.deepEqual([swapped.from, swapped.to], ['2026-11-02', '2026-11-05']);
});

test('filters are added once and removed by position', () => {
  let s = defaultState(one);
  s = addFilter(s, 'visit:country', 'DE');
  s = addFilter(s, 'visit:country', 'DE');
  s = addFilter(s, 'event:page', '/');
  assert.deepEqual(s.filters, [['is', 'visit:country', ['DE']], ['is', 'event:page', ['/']]]);
  assert.deepEqual(removeFilter(s, 0).filters, [['is', 'event:page', ['/']]]);
});

test('the demo starts on today: no range in its URL means today, and 30 days is written out', () => {
  const sites = [{ id: 1, name: 'Demo site', timezone: 'UTC', domains: [] }];
  assert.equal(parseState('', sites, 'day').range, 'day');
  assert.equal(stateToSearch(parseState('', sites, 'day'), sites, 'day'), '');
  assert.equal(stateToSearch({ ...parseState('', sites, 'day'), range: '30d' }, sites, 'day'), '?range=30d');
  assert.equal(parseState('?range=30d', sites, 'day').range, '30d');
});
