// Date ranges of the dashboard, as days (YYYY-MM-DD) of the site's time zone. Pure functions:
// `today` is passed in, so tests can fix it.

/** The ranges offered, in the picker's order. */
export const RANGES = ['day', 'yesterday', '7d', '30d', 'month', 'lastmonth', '180d', 'custom'];

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

/** Whether `s` is a real calendar day written YYYY-MM-DD. */
export function isDay(s) {
  if (typeof s !== 'string' || !DAY_RE.test(s)) return false;
  const d = new Date(s + 'T00:00:00Z');
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

/** Today in `timeZone` at the instant `now` (a Date), as YYYY-MM-DD. */
export function todayIn(timeZone, now = new Date()) {
  try {
    // en-CA writes dates as YYYY-MM-DD.
    return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(now);
  } catch {
    return now.toISOString().slice(0, 10);
  }
}

/** The current hour in `timeZone` as an API hour label, `YYYY-MM-DD HH:00:00`. */
export function hourIn(timeZone, now = new Date()) {
  try {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' })
        .formatToParts(now)
        .map((p) => [p.type, p.value]),
    );
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:00:00`;
  } catch {
    return now.toISOString().slice(0, 13).replace('T', ' ') + ':00:00';
  }
}

/** `day` moved by `n` days. */
export function addDays(day, n) {
  const d = new Date(day + 'T00:00:00Z');
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/** Days from `from` to `to`, both included. */
export function dayCount(from, to) {
  return Math.round((Date.parse(to + 'T00:00:00Z') - Date.parse(from + 'T00:00:00Z')) / 86400000) + 1;
}

function monthStart(day) {
  return day.slice(0, 8) + '01';
}

function monthEnd(day) {
  const d = new Date(monthStart(day) + 'T00:00:00Z');
  d.setUTCMonth(d.getUTCMonth() + 1);
  d.setUTCDate(0);
  return d.toISOString().slice(0, 10);
}

/**
 * Resolves a range to its days and to the API's `date_range`. The API's own names are sent
 * where one means the same days (the server then counts from *its* today in the site's time
 * zone, which is what the label shows too); `yesterday` is the API's `1d` (the day before
 * today), `lastmonth` its `1mo`. `custom` needs `from` and `to`; a reversed pair is swapped,
 * an invalid one falls back to 30 days.
 * @returns {{range: string, from: string, to: string, days: number, api: string|string[]}}
 */
export function resolveRange(range, today, from, to) {
  switch (range) {
    case 'day':
      return { range, from: today, to: today, days: 1, api: 'day' };
    case 'yesterday': {
      const y = addDays(today, -1);
      return { range, from: y, to: y, days: 1, api: '1d' };
    }
    case '7d':
    case '30d':
    case '180d': {
      const n = parseInt(range, 10);
      return { range, from: addDays(today, -n), to: addDays(today, -1), days: n, api: range };
    }
    case 'month': {
      const f = monthStart(today);
      const t = monthEnd(today);
      return { range, from: f, to: t, days: dayCount(f, t), api: 'month' };
    }
    case 'lastmonth': {
      const t = addDays(monthStart(today), -1);
      const f = monthStart(t);
      return { range, from: f, to: t, days: dayCount(f, t), api: '1mo' };
    }
    case 'custom':
      if (isDay(from) && isDay(to)) {
        const [a, b] = from <= to ? [from, to] : [to, from];
        return { range, from: a, to: b, days: dayCount(a, b), api: [a, b] };
      }
      return resolveRange('30d', today);
    default:
      return resolveRange('30d', today);
  }
}

/** The time bucket of the chart: hours for a single day, days otherwise. */
export function timeGrain(resolved) {
  return resolved.days <= 1 ? 'time:hour' : 'time:day';
}
