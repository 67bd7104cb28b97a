// Plausible's own published tracker (`@plausible-analytics/tracker` from the npm registry,
// pinned in package.json, served to the page from node_modules) in headless Chromium, with
// its endpoint set to tally's `/api/event`: page views, a custom event with props and revenue,
// a file download and an outbound link click, an SPA navigation, engagement on leaving the
// page; then the stored rows, and the same numbers through the Stats API after a rollup.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startTallyWith, startBrowser, newContext, waitRows, sql, tallyCli } from './harness.mjs';

const TRACKER = fileURLToPath(new URL('./node_modules/@plausible-analytics/tracker/plausible.js', import.meta.url));

let tally, site, browser, apiKey;

/** A page that loads the tracker as its npm README says: `init` with our endpoint. */
function page(title, endpoint) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>
<script>
  // The tracker ignores browsers driven by WebDriver unless the page says it is a test.
  window.__plausible = true;
</script>
<script type="module">
  import { init, track } from '/tracker/plausible.js';
  init({
    domain: 'localhost',
    endpoint: '${endpoint}',
    captureOnLocalhost: true,
    outboundLinks: true,
    fileDownloads: true,
    logging: false,
  });
  window.signup = () =>
    new Promise((done) =>
      track('Signup', { props: { plan: 'pro', contact: 'ann@example.com' }, revenue: { amount: '12.50', currency: 'EUR' }, callback: done }),
    );
  window.spa = () => history.pushState({}, '', '/p/second');
  window.trackerReady = true;
</script></head>
<body style="height: 3000px">
  <a id="pdf" href="/files/report.pdf">report</a>
  <a id="out" href="https://other.example.net/x">elsewhere</a>
</body></html>`;
}

before(async () => {
  site = createServer((req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    if (path === '/tracker/plausible.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(readFileSync(TRACKER));
    } else if (path.startsWith('/p/')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(page('Plausible page', `${site.tallyUrl}/api/event`));
    } else if (path === '/bye.html') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end('<!doctype html><title>bye</title>');
    } else if (path.startsWith('/files/')) {
      res.writeHead(204).end(); // a download that does not leave the page
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => site.listen(0, '127.0.0.1', r));
  site.url = `http://localhost:${site.address().port}`;
  tally = await startTallyWith(`[[sites]]
id = 1
name = "Plausible site"
domains = ["localhost"]
[api]
key_refresh_secs = 1
[rollup]
interval_secs = 0
`);
  site.tallyUrl = tally.url.replace('127.0.0.1', 'localhost');
  const made = await tallyCli(tally, ['key', 'create', '--site', '1', '--name', 'plausible']);
  apiKey = made.trim().split('\n').pop().trim();
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await tally?.stop();
  await new Promise((r) => site.close(r));
});

test("Plausible's tracker against /api/event", async () => {
  const context = await newContext(browser);
  const p = await context.newPage();
  const answers = [];
  p.on('response', (r) => {
    if (new URL(r.url()).pathname === '/api/event') answers.push(r.status());
  });
  await p.goto(`${site.url}/p/index.html`);
  await p.waitForFunction(() => window.trackerReady === true);
  await waitRows(tally, "SELECT count() AS n FROM events WHERE kind = 'pageview'", (r) => Number(r[0]?.n) >= 1);

  // A custom event with props and revenue.
  await p.evaluate(() => window.signup());
  // Scroll, then an SPA navigation: the first page's engagement, then the second page view.
  await p.mouse.wheel(0, 1200);
  await p.waitForTimeout(300);
  await p.evaluate(() => window.spa());
  await waitRows(tally, "SELECT count() AS n FROM events WHERE url LIKE '%/p/second'", (r) => Number(r[0]?.n) >= 1);
  // A file download (the page stays).
  await p.click('#pdf');
  await waitRows(tally, "SELECT count() AS n FROM events WHERE kind = 'download'", (r) => Number(r[0]?.n) >= 1);
  // The visitor leaves: the tab goes to the background. Headless Chromium never hides a page
  // (not on switching tabs, not on navigating away), so the page is told what a real tab
  // switch tells it: `visibilityState` is `hidden` and `visibilitychange` fires; the tracker's
  // own listener sends the engagement.
  await p.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await waitRows(tally, "SELECT count() AS n FROM events WHERE kind = 'ping' AND url LIKE '%/p/second'", (r) => Number(r[0]?.n) >= 1);
  // Back, and out through a link to another site (the navigation is aborted off loopback).
  await p.evaluate(() => {
    delete document.visibilityState;
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await p.click('#out');
  await waitRows(tally, "SELECT count() AS n FROM events WHERE kind = 'outlink'", (r) => Number(r[0]?.n) >= 1);
  await context.close();

  const rows = await sql(
    tally,
    `SELECT toString(kind) AS kind, url, event_name, target_url, revenue, prop_keys, prop_values, scroll_depth, visitor_key
     FROM events ORDER BY ts, kind`,
  );
  const of = (kind) => rows.filter((r) => r.kind === kind);
  const port = new URL(site.url).port;
  // Sorted: `ts` has whole seconds, and hits a few hundred milliseconds apart share one.
  const urls = (kind) => of(kind).map((r) => r.url).sort();
  assert.deepEqual(urls('pageview'), [`http://localhost:${port}/p/index.html`, `http://localhost:${port}/p/second`]);
  const [ev] = of('event');
  assert.equal(of('event').length, 1, JSON.stringify(rows));
  assert.equal(ev.event_name, 'Signup');
  assert.equal(Number(ev.revenue), 12.5);
  // Kept in key order.
  assert.deepEqual(ev.prop_keys, ['contact', 'plan']);
  assert.deepEqual(ev.prop_values, ['[email]', 'pro']);
  assert.deepEqual(of('download').map((r) => r.target_url), [`http://localhost:${port}/files/report.pdf`]);
  assert.deepEqual(of('download')[0].prop_keys, ['url']);
  assert.deepEqual(of('outlink').map((r) => r.target_url), ['https://other.example.net/x']);
  const pings = of('ping');
  assert.deepEqual(urls('ping'), [`http://localhost:${port}/p/index.html`, `http://localhost:${port}/p/second`], 'an engagement per page left');
  const first = pings.find((r) => r.url.endsWith('/p/index.html'));
  assert.ok(first && Number(first.scroll_depth) > 0 && Number(first.scroll_depth) <= 100, JSON.stringify(pings));
  assert.equal(new Set(rows.map((r) => r.visitor_key)).size, 1, 'one visitor key for the whole visit');
  // Every answer the page saw was 202. Not one per row: a hit sent as the page navigates away
  // (the outlink) is stored, but its answer may arrive after the page is gone.
  assert.ok(answers.length > 0 && answers.every((s) => s === 202), `answers ${answers}`);

  // The same numbers through the Stats API.
  await tallyCli(tally, ['rollup']);
  const r = await fetch(`${tally.url}/api/v2/query`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ site_id: 1, metrics: ['visitors', 'visits', 'pageviews', 'events'], date_range: 'day' }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  const [visitors, visits, pageviews, events] = JSON.parse(text).results[0].metrics;
  const actions = rows.filter((r) => r.kind !== 'ping').length;
  assert.deepEqual({ visitors, visits, pageviews, events }, { visitors: 1, visits: 1, pageviews: 2, events: actions });
  assert.equal(actions, 5);
});
