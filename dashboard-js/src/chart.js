// The time series of visitors and page views, drawn by uPlot on a canvas, with a text
// alternative (a summary sentence and a table of the numbers) for screen readers and keyboards.
import uPlot from 'uplot';
import { h } from './dom.js';
import { t } from './i18n.js';
import { formatNumber, formatTimeLabel } from './format.js';
import { seriesOf, labelSeconds } from './series.js';

function cssVar(el, name, fallback) {
  return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
}

/** Renders the chart into `box`; returns a function that removes it (and its resize observer). */
export function drawChart(box, lang, answer, grain, resolved, until = null) {
  const s = seriesOf(answer, until);
  const hourly = grain === 'time:hour';
  const sum = (a) => a.reduce((x, y) => x + (y ?? 0), 0);
  let peak = 0;
  s.visitors.forEach((v, i) => {
    if (v > s.visitors[peak]) peak = i;
  });
  const from = formatTimeLabel(lang, resolved.from);
  const to = formatTimeLabel(lang, resolved.to);
  const alt = s.labels.length
    ? t(lang, 'chart_alt', {
        grain: t(lang, hourly ? 'grain_hour' : 'grain_day'),
        from,
        to,
        pageviews: formatNumber(lang, sum(s.pageviews)),
        peak: formatNumber(lang, s.visitors[peak] ?? 0),
        peakAt: s.labels[peak] ? formatTimeLabel(lang, s.labels[peak]) : '',
      })
    : t(lang, 'chart_alt_empty', { from, to });

  const formatRangeLabel = from === to ? from : `${from} – ${to}`;
  const plot = h('div', { class: 'plot', 'aria-hidden': 'true' });
  const table = h(
    'details',
    { class: 'chart-table' },
    h('summary', {}, t(lang, 'chart_table')),
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        {},
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t(lang, 'time')), h('th', { scope: 'col' }, t(lang, 'm_visitors')), h('th', { scope: 'col' }, t(lang, 'm_pageviews')))),
        h(
          'tbody',
          {},
          s.labels.map((l, i) => h('tr', {}, h('th', { scope: 'row' }, formatTimeLabel(lang, l)), h('td', {}, formatNumber(lang, s.visitors[i])), h('td', {}, formatNumber(lang, s.pageviews[i])))),
        ),
      ),
    ),
  );
  box.replaceChildren(h('p', { class: 'sr-only' }, alt), plot, table);

  const fg = cssVar(box, '--muted', '#555');
  const grid = cssVar(box, '--grid', '#e5e7eb');
  const c1 = cssVar(box, '--series1', '#4338ca');
  const c2 = cssVar(box, '--series2', '#0e7490');
  const tick = new Intl.DateTimeFormat(lang === 'de' ? 'de-DE' : 'en-GB', hourly ? { timeZone: 'UTC', hour: '2-digit', minute: '2-digit' } : { timeZone: 'UTC', day: 'numeric', month: 'short' });
  const nf = new Intl.NumberFormat(lang === 'de' ? 'de-DE' : 'en-GB', { notation: 'compact' });
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const width = () => Math.max(280, box.clientWidth || 600);
  const opts = {
    width: width(),
    height: 240,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    cursor: { drag: { x: false, y: false } },
    legend: { show: true, live: true },
    series: [
      // Without a cursor on the chart the legend names the series only: a sum of hourly or daily
      // visitors would not be the range's visitors (one person in two hours counts twice).
      { label: t(lang, 'time'), value: (u, v) => (v === null ? formatRangeLabel : formatTimeLabel(lang, new Date(v * 1000).toISOString().slice(0, hourly ? 19 : 10).replace('T', ' '))) },
      { label: t(lang, 'm_visitors'), stroke: c1, fill: c1 + '22', width: 2, value: (u, v) => (v === null ? '' : formatNumber(lang, v)) },
      { label: t(lang, 'm_pageviews'), stroke: c2, width: 2, dash: [6, 4], value: (u, v) => (v === null ? '' : formatNumber(lang, v)) },
    ],
    axes: [
      // Ticks on whole hours or whole days only (uPlot would otherwise label sub-day steps).
      { ...axis, space: 56, incrs: hourly ? [3600, 7200, 10800, 21600, 43200] : [86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400], values: (u, vals) => vals.map((v) => tick.format(new Date(v * 1000))) },
      { ...axis, size: 48, values: (u, vals) => vals.map((v) => nf.format(v)) },
    ],
    scales: { y: { range: (u, min, max) => [0, Math.max(4, max * 1.1)] } },
  };
  const u = new uPlot(opts, [s.labels.map(labelSeconds), s.visitors, s.pageviews], plot);
  const observer = new ResizeObserver(() => u.setSize({ width: width(), height: 240 }));
  observer.observe(box);
  return () => {
    observer.disconnect();
    u.destroy();
  };
}
