// Numbers, durations, changes and dates for one language, with Intl. Pure apart from Intl.

const LOCALES = { en: 'en-GB', de: 'de-DE' };
const locale = (lang) => LOCALES[lang] ?? 'en-GB';

/** An integer or decimal number (at most two decimals); `–` for null. */
export function formatNumber(lang, n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return new Intl.NumberFormat(locale(lang), { maximumFractionDigits: 2 }).format(n);
}

/** A percentage given as a number of percent (`12.5` → `12.5%` / `12,5 %`). */
export function formatPercent(lang, n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return new Intl.NumberFormat(locale(lang), { style: 'percent', maximumFractionDigits: 1 }).format(n / 100);
}

/** A duration in seconds: `45s`, `3m 05s`, `1h 02m` (German: `45 s`, `3 min 05 s`, `1 h 02 min`), never split between a number and its unit. */
export function formatDuration(lang, secs) {
  if (secs === null || secs === undefined || Number.isNaN(secs)) return '–';
  const s = Math.max(0, Math.round(secs));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const two = (x) => String(x).padStart(2, '0');
  // A no-break space between a number and its unit; the parts may wrap between them.
  const [hu, mu, su, sep] = lang === 'de' ? ['\u00a0h', '\u00a0min', '\u00a0s', ' '] : ['h', 'm', 's', ' '];
  if (h) return `${h}${hu}${sep}${two(m)}${mu}`;
  if (m) return `${m}${mu}${sep}${two(r)}${su}`;
  return `${r}${su}`;
}

/** A metric's value as shown. */
export function formatMetric(lang, metric, v) {
  if (metric === 'visit_duration') return formatDuration(lang, v);
  if (metric === 'bounce_rate' || metric === 'percentage' || metric === 'conversion_rate') return formatPercent(lang, v);
  return formatNumber(lang, v);
}

/** Rates change in percentage points, the other metrics in percent (as the API reports them). */
export function isRate(metric) {
  return metric === 'bounce_rate' || metric === 'conversion_rate' || metric === 'percentage';
}

/**
 * A change as reported by the API (`comparison.change`): `+12%`, `−3 pp`; `null` when there is
 * nothing to compare with. `good` says whether it is an improvement (a lower bounce rate is).
 */
export function formatChange(lang, metric, change) {
  if (change === null || change === undefined || Number.isNaN(change)) return null;
  const nf = new Intl.NumberFormat(locale(lang), { maximumFractionDigits: 1, signDisplay: 'exceptZero' });
  const text = isRate(metric) ? `${nf.format(change)} ${lang === 'de' ? 'Pp.' : 'pp'}` : `${nf.format(change)} %`;
  const good = change === 0 ? null : metric === 'bounce_rate' ? change < 0 : change > 0;
  return { text: lang === 'en' && !isRate(metric) ? text.replace(' %', '%') : text, good };
}

/** A day (YYYY-MM-DD) as a short date: `26 Nov 2026` / `26.11.2026`. */
export function formatDay(lang, day, opts = { day: 'numeric', month: 'short', year: 'numeric' }) {
  const d = new Date(day.slice(0, 10) + 'T00:00:00Z');
  if (Number.isNaN(d.getTime())) return day;
  return new Intl.DateTimeFormat(locale(lang), { timeZone: 'UTC', ...(lang === 'de' && opts.month === 'short' ? { day: '2-digit', month: '2-digit', year: 'numeric' } : opts) }).format(d);
}

/** A range of days: one date, or `from – to`. */
export function formatRange(lang, from, to) {
  return from === to ? formatDay(lang, from) : `${formatDay(lang, from)} – ${formatDay(lang, to)}`;
}

/** An API time label (`2026-11-26` or `2026-11-26 13:00:00`, site time) as shown. */
export function formatTimeLabel(lang, label) {
  if (label.length > 10) {
    const hour = label.slice(11, 16);
    return `${formatDay(lang, label)} ${hour}`;
  }
  return formatDay(lang, label);
}

/** An ISO instant (`2026-11-26T18:00:00Z`) as a date and time in the browser's zone. */
export function formatInstant(lang, iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso ?? '';
  return new Intl.DateTimeFormat(locale(lang), { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}
