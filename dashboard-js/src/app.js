// The dashboard page: header, controls, filter chips, headline figures, realtime visitors, the
// chart and the tabbed cards. State lives in the URL (state.js); every change pushes a history
// entry and renders again; each part loads on its own and shows its own error.
import { h, fill } from './dom.js';
import { t, LANGS, pickLang } from './i18n.js';
import { RANGES, todayIn, hourIn, resolveRange, timeGrain } from './dates.js';
import { parseState, stateToSearch, addFilter, removeFilter, COMPARISONS, TABS } from './state.js';
import { cardsOf, cardFilteringBy } from './cards.js';
import { headlineQuery, chartQuery, realtimeQuery, cardQuery, csvQuery, csvName, HEADLINE } from './queries.js';
import { formatMetric, formatChange, formatRange, formatNumber } from './format.js';
import { query } from './api.js';
import { drawChart } from './chart.js';
import { renderSettings } from './admin.js';

const LANG_KEY = 'tally-lang';
const REALTIME_MS = 30_000;
const MORE_PAGE = 50;

/** Starts the dashboard in `root` with the page's config. */
export function start(root, config) {
  const sites = config.sites?.length ? config.sites : [{ id: 1, name: 'Site', timezone: 'UTC', domains: [] }];
  let stored = null;
  try {
    stored = localStorage.getItem(LANG_KEY);
  } catch {
    // storage may be off (private mode, an embedding page's policy): the server's pick then
  }
  const firstRange = config.demo ? 'day' : '30d';
  const app = {
    config,
    sites,
    firstRange,
    lang: pickLang(stored, config.lang),
    state: parseState(location.search, sites, firstRange),
    controller: null,
    disposeChart: null,
    realtimeTimer: null,
    realtimeBox: null,
  };
  if (!config.admin) app.state.view = 'dashboard';

  const go = (next, push = true) => {
    app.state = next;
    if (push) {
      const search = stateToSearch(next, sites, firstRange);
      if (search !== location.search) history.pushState(null, '', location.pathname + search);
    }
    render(root, app, go);
  };
  addEventListener('popstate', () => go(parseState(location.search, sites, firstRange), false));
  document.addEventListener('visibilitychange', () => scheduleRealtime(app));
  app.setLang = (lang) => {
    app.lang = lang;
    try {
      localStorage.setItem(LANG_KEY, lang);
    } catch {
      // not remembered, still switched
    }
    render(root, app, go);
  };
  render(root, app, go);
}

function site(app) {
  return app.sites.find((s) => s.id === app.state.site) ?? app.sites[0];
}

function render(root, app, go) {
  const { lang, config } = app;
  document.documentElement.lang = lang;
  app.controller?.abort();
  app.controller = new AbortController();
  app.disposeChart?.();
  app.disposeChart = null;
  const main = h('main', { id: 'main' });
  fill(root, header(app, go), main);
  if (app.state.view === 'settings' && config.admin) {
    stopRealtime(app);
    document.title = `${t(lang, 'settings')} · tally`;
    renderSettings(main, app);
    return;
  }
  document.title = `${site(app).name} · tally`;
  dashboard(main, app, go);
}

function header(app, go) {
  const { lang, config, state, sites } = app;
  const other = LANGS.find((l) => l !== lang);
  const nav = h('div', { class: 'top-actions' });
  if (config.admin) {
    const settings = state.view === 'settings';
    nav.append(
      h('a', { href: location.pathname + stateToSearch({ ...state, view: settings ? 'dashboard' : 'settings' }, sites, app.firstRange), class: 'button', onclick: (e) => {
        e.preventDefault();
        go({ ...state, view: settings ? 'dashboard' : 'settings' });
      } }, t(lang, settings ? 'dashboard' : 'settings')),
    );
  }
  if (config.demo) nav.append(h('a', { href: `${config.base}/demo`, class: 'button' }, t(lang, 'demo_link')));
  nav.append(h('button', { type: 'button', lang: other, 'aria-label': t(lang, 'language_label'), onclick: () => app.setLang(other) }, t(lang, 'language')));
  if (config.mode !== 'share' && config.logout) {
    nav.append(
      h('form', { method: 'post', action: config.logout, class: 'inline' },
        h('input', { type: 'hidden', name: 'csrf', value: config.csrf ?? '' }),
        h('button', { type: 'submit' }, t(lang, 'sign_out'))),
    );
  }
  const who = config.mode === 'share' ? t(lang, 'shared_view') : config.user ? t(lang, 'signed_in_as', { name: config.user.name }) : '';
  let picker;
  if (sites.length > 1 && config.mode !== 'share') {
    picker = h('label', { class: 'site-picker' }, h('span', { class: 'sr-only' }, t(lang, 'site')),
      h('select', { onchange: (e) => go({ ...state, site: Number(e.target.value), filters: [] }) },
        sites.map((s) => h('option', { value: String(s.id), selected: s.id === state.site }, s.name))));
  } else {
    picker = h('span', { class: 'site-name' }, site(app).name);
  }
  return h('header', { class: 'top' },
    h('a', { class: 'skip', href: '#main' }, t(lang, 'skip')),
    h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), 'tally'),
    picker,
    who ? h('span', { class: 'who' }, who) : null,
    nav);
}

function dashboard(main, app, go) {
  const { lang, state } = app;
  const today = todayIn(site(app).timezone);
  const resolved = resolveRange(state.range, today, state.from, state.to);
  const signal = app.controller.signal;

  // Controls: range (with custom days) and comparison.
  const custom = h('form', { class: 'custom', hidden: state.range !== 'custom', onsubmit: (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const from = f.get('from');
    const to = f.get('to');
    if (from && to) go({ ...state, range: 'custom', from: from <= to ? from : to, to: from <= to ? to : from });
  } },
    h('label', {}, t(lang, 'from'), ' ', h('input', { type: 'date', name: 'from', required: true, value: resolved.from, max: today })),
    h('label', {}, t(lang, 'to'), ' ', h('input', { type: 'date', name: 'to', required: true, value: resolved.to, max: today })),
    h('button', { type: 'submit' }, t(lang, 'apply')));
  const controls = h('section', { class: 'controls', 'aria-label': t(lang, 'range') },
    h('label', {}, h('span', {}, t(lang, 'range')),
      h('select', { onchange: (e) => {
        const range = e.target.value;
        if (range === 'custom') {
          custom.hidden = false;
          custom.querySelector('input').focus();
        } else go({ ...state, range, from: null, to: null });
      } }, RANGES.map((r) => h('option', { value: r, selected: r === state.range }, t(lang, 'range_' + r))))),
    custom,
    h('label', {}, h('span', {}, t(lang, 'compare')),
      h('select', { onchange: (e) => go({ ...state, compare: e.target.value }) },
        COMPARISONS.map((c) => h('option', { value: c, selected: c === state.compare }, t(lang, 'compare_' + c))))),
    h('p', { class: 'range-label' }, formatRange(lang, resolved.from, resolved.to)));
  main.append(h('h1', { class: 'sr-only' }, `${site(app).name}: ${t(lang, 'dashboard')}`), controls);

  // Filter chips.
  if (state.filters.length) {
    main.append(h('section', { class: 'chips', 'aria-label': t(lang, 'filters') },
      h('h2', { class: 'sr-only' }, t(lang, 'filters')),
      h('ul', {}, state.filters.map((f, i) => {
        const label = filterLabel(lang, f);
        return h('li', {}, h('button', { type: 'button', class: 'chip', 'aria-label': t(lang, 'remove_filter', { filter: label }), onclick: () => go(removeFilter(state, i)) },
          h('span', {}, label), h('span', { class: 'x', 'aria-hidden': 'true' }, '×')));
      })),
      state.filters.length > 1 ? h('button', { type: 'button', class: 'link', onclick: () => go({ ...state, filters: [] }) }, t(lang, 'clear_filters')) : null));
  }

  // Headline figures and realtime.
  const headline = h('section', { class: 'headline', 'aria-label': t(lang, 'm_visitors') });
  const realtime = h('div', { class: 'tile realtime', 'aria-live': 'polite' });
  app.realtimeBox = realtime;
  headline.append(realtime);
  const tiles = {};
  for (const m of HEADLINE) {
    tiles[m] = h('div', { class: 'tile' }, h('span', { class: 'tile-label' }, t(lang, 'm_' + m)), h('span', { class: 'tile-value' }, '…'));
    headline.append(tiles[m]);
  }
  main.append(headline);
  const notes = h('div', { class: 'notes' });
  if (resolved.days > 1) notes.append(h('p', { class: 'note', id: 'note-visitors' }, t(lang, 'note_visitors_days')));
  if (state.filters.some((f) => f[1] === 'event:page')) notes.append(h('p', { class: 'note' }, t(lang, 'note_vpv_page')));
  main.append(notes);
  loadHeadline(app, tiles, resolved, signal);
  scheduleRealtime(app);

  // Chart.
  const chartBox = h('div', { class: 'chart-box' }, h('p', { class: 'muted' }, t(lang, 'loading')));
  main.append(h('section', { class: 'card chart', 'aria-labelledby': 'chart-title' }, h('h2', { id: 'chart-title' }, t(lang, 'chart_title')), chartBox));
  const grain = timeGrain(resolved);
  query(app.config, chartQuery(state, resolved), { signal })
    .then((answer) => {
      if (!signal.aborted) app.disposeChart = drawChart(chartBox, lang, answer, grain, resolved, grain === 'time:hour' ? hourIn(site(app).timezone) : today);
    })
    .catch((e) => showError(chartBox, lang, e));

  // Tabs of cards.
  const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': t(lang, 'tabs') });
  const buttons = TABS.map((tab) =>
    h('button', { type: 'button', role: 'tab', id: 'tab-' + tab, 'aria-controls': 'panel', 'aria-selected': String(tab === state.tab), tabindex: tab === state.tab ? '0' : '-1',
      onclick: () => go({ ...state, tab }),
      onkeydown: (e) => {
        const i = TABS.indexOf(tab);
        const j = e.key === 'ArrowRight' ? (i + 1) % TABS.length : e.key === 'ArrowLeft' ? (i + TABS.length - 1) % TABS.length : e.key === 'Home' ? 0 : e.key === 'End' ? TABS.length - 1 : -1;
        if (j < 0) return;
        e.preventDefault();
        go({ ...state, tab: TABS[j] });
        document.getElementById('tab-' + TABS[j])?.focus();
      } }, t(lang, 'tab_' + tab)));
  tablist.append(...buttons);
  const panel = h('div', { class: 'grid', role: 'tabpanel', id: 'panel', 'aria-labelledby': 'tab-' + state.tab });
  for (const card of cardsOf(state.tab)) panel.append(renderCard(app, go, card, resolved, signal));
  main.append(h('section', { class: 'reports', 'aria-label': t(lang, 'tabs') }, tablist, panel));
  if (state.tab === 'locations') main.append(h('p', { class: 'note' }, t(lang, 'note_location')));
}

function filterLabel(lang, f) {
  const card = cardFilteringBy(f[1]);
  const name = card ? t(lang, 'card_' + card.id) : f[1];
  let value = f[2][0];
  if (f[1] === 'visit:country') {
    try {
      value = new Intl.DisplayNames([lang], { type: 'region' }).of(value) ?? value;
    } catch {
      // an unknown code: show it as it is
    }
  }
  return `${name}: ${value}`;
}

function showError(box, lang, e) {
  if (e?.name === 'AbortError') return;
  fill(box, h('p', { class: 'error' }, t(lang, 'error', { message: e?.message ?? String(e) })));
}

async function loadHeadline(app, tiles, resolved, signal) {
  const { lang, state } = app;
  const body = headlineQuery(state, resolved);
  const period = t(lang, 'compare_' + state.compare);
  try {
    const answer = await query(app.config, body, { signal });
    if (signal.aborted) return;
    const row = answer.results[0] ?? { metrics: [] };
    for (const m of HEADLINE) {
      const i = body.metrics.indexOf(m);
      const tile = tiles[m];
      const value = i < 0 ? null : row.metrics[i] ?? (m === 'visitors' || m === 'visits' || m === 'pageviews' ? 0 : null);
      const parts = [h('span', { class: 'tile-label' }, t(lang, 'm_' + m), m === 'visitors' && resolved.days > 1 ? h('sup', { 'aria-hidden': 'true' }, '*') : null), h('span', { class: 'tile-value' }, formatMetric(lang, m, value))];
      if (row.comparison && i >= 0) {
        const change = formatChange(lang, m, row.comparison.change[i]);
        parts.push(change
          ? h('span', { class: 'change ' + (change.good === null ? '' : change.good ? 'good' : 'bad') }, change.text, h('span', { class: 'sr-only' }, ' ' + t(lang, 'change_vs', { period })))
          : h('span', { class: 'change' }, t(lang, 'change_none')));
      }
      if (m === 'visitors' && resolved.days > 1) tile.setAttribute('aria-describedby', 'note-visitors');
      fill(tile, parts);
    }
  } catch (e) {
    if (e?.name === 'AbortError') return;
    for (const m of HEADLINE) fill(tiles[m], h('span', { class: 'tile-label' }, t(lang, 'm_' + m)), h('span', { class: 'tile-value' }, '–'));
    tiles.visitors.append(h('p', { class: 'error' }, t(lang, 'error', { message: e.message })));
  }
}

// Realtime: fetched now and every 30 s while the tab is visible; paused while it is hidden.
function stopRealtime(app) {
  clearInterval(app.realtimeTimer);
  app.realtimeTimer = null;
}

function scheduleRealtime(app) {
  stopRealtime(app);
  if (document.hidden || app.state.view === 'settings' || !app.realtimeBox) return;
  loadRealtime(app);
  app.realtimeTimer = setInterval(() => loadRealtime(app), REALTIME_MS);
}

async function loadRealtime(app) {
  const box = app.realtimeBox;
  const { lang } = app;
  const label = h('span', { class: 'tile-label' }, h('span', { class: 'pulse', 'aria-hidden': 'true' }), t(lang, 'realtime'));
  if (!box.firstChild) fill(box, label, h('span', { class: 'tile-value' }, '…'));
  try {
    const answer = await query(app.config, realtimeQuery(app.state));
    if (box !== app.realtimeBox) return;
    fill(box, label, h('span', { class: 'tile-value' }, formatNumber(lang, answer.results[0]?.metrics[0] ?? 0)),
      h('span', { class: 'tile-note' }, t(lang, 'realtime_note')));
  } catch (e) {
    if (box === app.realtimeBox) fill(box, label, h('p', { class: 'error' }, t(lang, 'error', { message: e.message })));
  }
}

/** One report card: title, CSV download, the top rows with their share bars, and "more". */
function renderCard(app, go, card, resolved, signal) {
  const { lang } = app;
  const title = t(lang, 'card_' + card.id);
  const body = h('div', { class: 'card-body' }, h('p', { class: 'muted' }, t(lang, 'loading')));
  const more = h('button', { type: 'button', class: 'link', hidden: true, onclick: () => openMore(app, go, card, resolved) }, t(lang, 'more'));
  const el = h('section', { class: 'card', 'aria-labelledby': 'card-' + card.id },
    h('div', { class: 'card-head' }, h('h3', { id: 'card-' + card.id }, title),
      h('button', { type: 'button', class: 'link csv', 'aria-label': t(lang, 'csv_label', { card: title }), onclick: (e) => downloadCsv(app, card, resolved, e.currentTarget) }, t(lang, 'csv'))),
    body,
    h('div', { class: 'card-foot' }, more));
  query(app.config, cardQuery(card, app.state, resolved), { signal })
    .then((answer) => {
      if (signal.aborted) return;
      fill(body, rowsTable(app, go, card, answer));
      more.hidden = !((answer.meta?.total_rows ?? 0) > answer.results.length);
    })
    .catch((e) => showError(body, lang, e));
  return el;
}

/** The rows of an answer as a table; each row's label is a button that filters by it. */
function rowsTable(app, go, card, answer, after) {
  const { lang, state } = app;
  if (!answer.results.length) return h('p', { class: 'muted' }, t(lang, 'no_data'));
  const metrics = answer.query?.metrics ?? card.metrics;
  const shown = card.metrics;
  const barAt = metrics.indexOf(card.bar);
  const comparing = state.compare !== 'none';
  return h('div', { class: 'scroll' }, h('table', { class: 'rows' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t(lang, 'card_' + card.id)), shown.map((m) => h('th', { scope: 'col', class: 'num' }, t(lang, 'm_' + m))))),
    h('tbody', {}, answer.results.map((row) => {
      const label = row.dimensions[card.label];
      const value = row.dimensions[card.filterValue];
      const share = barAt >= 0 ? Math.max(0, Math.min(100, row.metrics[barAt] ?? 0)) : 0;
      const bar = h('span', { class: 'bar', 'aria-hidden': 'true' });
      bar.style.width = share + '%';
      const clickable = value !== '(none)' && value !== '';
      const text = label === '(none)' || label === '' ? t(lang, 'value_none') : label;
      const cell = clickable
        ? h('button', { type: 'button', class: 'row-filter', title: t(lang, 'filter_by', { value: text }), onclick: () => {
          after?.();
          go(addFilter(state, card.filter, value));
        } }, bar, h('span', { class: 'label' }, text))
        : h('span', { class: 'row-filter' }, bar, h('span', { class: 'label' }, text));
      return h('tr', {}, h('th', { scope: 'row' }, cell), shown.map((m, k) => {
        const i = metrics.indexOf(m);
        const change = comparing && k === 0 && row.comparison ? formatChange(lang, m, row.comparison.change[i]) : null;
        return h('td', { class: 'num' }, formatMetric(lang, m, row.metrics[i]),
          change ? h('span', { class: 'change small ' + (change.good === null ? '' : change.good ? 'good' : 'bad') }, ' ', change.text) : null);
      }));
    }))));
}

/** The "more" view: a dialog with the card's rows, 50 at a time. */
function openMore(app, go, card, resolved) {
  const { lang } = app;
  const title = t(lang, 'more_title', { card: t(lang, 'card_' + card.id) });
  const body = h('div', { class: 'more-body' });
  const pager = h('div', { class: 'pager' });
  const dialog = h('dialog', { class: 'more', 'aria-labelledby': 'more-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'more-title' }, title), h('button', { type: 'button', class: 'link', onclick: () => dialog.close() }, t(lang, 'close'))),
    body, pager);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  const load = async (offset) => {
    fill(body, h('p', { class: 'muted' }, t(lang, 'loading')));
    try {
      const answer = await query(app.config, cardQuery(card, app.state, resolved, { limit: MORE_PAGE, offset }));
      const total = answer.meta?.total_rows ?? answer.results.length;
      fill(body, rowsTable(app, go, card, answer, () => dialog.close()));
      fill(pager,
        h('button', { type: 'button', disabled: offset === 0, onclick: () => load(Math.max(0, offset - MORE_PAGE)) }, t(lang, 'prev')),
        h('span', { 'aria-live': 'polite' }, t(lang, 'rows_of', { from: formatNumber(lang, total ? offset + 1 : 0), to: formatNumber(lang, offset + answer.results.length), total: formatNumber(lang, total) })),
        h('button', { type: 'button', disabled: offset + MORE_PAGE >= total, onclick: () => load(offset + MORE_PAGE) }, t(lang, 'next')));
    } catch (e) {
      showError(body, lang, e);
    }
  };
  load(0);
}

async function downloadCsv(app, card, resolved, button) {
  const { lang } = app;
  const box = button.closest('.card').querySelector('.card-body');
  button.disabled = true;
  try {
    const blob = await query(app.config, csvQuery(card, app.state, resolved), { csv: true });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: csvName(site(app).name, card.id, resolved.from, resolved.to), hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (e) {
    box.prepend(h('p', { class: 'error' }, t(lang, 'error', { message: e.message })));
  } finally {
    button.disabled = false;
  }
}

