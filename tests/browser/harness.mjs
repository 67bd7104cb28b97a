// Test harness: a real `tally serve` (with the ClickHouse it embeds), a small test site on
// loopback, and headless Chromium driven by playwright-core. Nothing leaves the machine:
// every request to a host other than localhost is aborted and recorded.
import { spawn, execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const BROWSER_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/** Starts `tally serve` with an embedded ClickHouse for the test site on `localhost`. */
export async function startTally(sitePort) {
  // The site and the collector are both on `localhost` (different ports: different origins,
  // the same site). Over plain http the opt-out cookie is SameSite=Lax, which browsers send
  // within a site only; production runs the collector over https, where it is
  // SameSite=None; Secure and also works across sites.
  const tally = await startTallyWith(`[[sites]]
id = 1
name = "E2E site"
domains = ["localhost"]
# The derived frame-ancestors (http://localhost, https://localhost) mean the default ports; the
# test site runs on another one.
frame_ancestors = ["http://localhost:${sitePort}"]
`);
  // Browsers reach the collector as localhost (see above).
  return { ...tally, url: tally.url.replace('127.0.0.1', 'localhost') };
}

/** Runs SQL on the collector's ClickHouse; returns rows as objects. */
export async function sql(tally, query) {
  const r = await fetch(`${tally.ch}/?database=${tally.db}`, {
    method: 'POST',
    body: `${query} FORMAT JSONEachRow`,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`ClickHouse: ${text}`);
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** Polls `query` until `done(rows)` or 10 s; returns the last rows. */
export async function waitRows(tally, query, done) {
  const until = Date.now() + 10_000;
  let rows = [];
  while (Date.now() < until) {
    rows = await sql(tally, query);
    if (done(rows)) return rows;
    await new Promise((r) => setTimeout(r, 100));
  }
  return rows;
}

/**
 * Sends one page view straight to the collector and waits until it is stored. The queue is
 * first in, first out, so every hit sent before it has been decided by then: what is not
 * stored now never will be.
 */
export async function barrier(tally, tag) {
  const title = `barrier-${tag}`;
  const q = new URLSearchParams({ idsite: '1', rec: '1', url: 'http://localhost/barrier', action_name: title, send_image: '0' });
  const r = await fetch(`${tally.url}/matomo.php?${q}`, { headers: { 'User-Agent': BROWSER_UA } });
  if (r.status !== 204) throw new Error(`barrier hit answered ${r.status}`);
  const rows = await waitRows(tally, `SELECT count() AS n FROM events WHERE title = '${title}'`, (r) => Number(r[0]?.n) >= 1);
  if (!(Number(rows[0]?.n) >= 1)) throw new Error(`barrier ${tag} not stored`);
}

/** The Matomo snippet as a site pastes it, with extra commands before the script loads. */
function snippet(tally, extra = '') {
  return `<script>
  var _paq = window._paq = window._paq || [];
  ${extra}
  _paq.push(['enableLinkTracking']);
  (function() {
    var u="${tally.url}/";
    _paq.push(['setTrackerUrl', u+'matomo.php']);
    _paq.push(['setSiteId', '1']);
    var d=document, g=d.createElement('script'), s=d.getElementsByTagName('script')[0];
    g.async=true; g.src=u+'tally.js'; s.parentNode.insertBefore(g,s);
  })();
</script>`;
}

const page = (title, head, body) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${head}</head><body>${body}</body></html>`;

/**
 * The test site: pages that embed the snippet, served on loopback. It starts before the
 * collector (whose config needs the site's port); `site.tally` is set once that runs.
 */
export async function startSite() {
  const site = {};
  const tally = {
    get url() {
      return site.tally.url;
    },
  };
  const pv = "_paq.push(['trackPageView']);";
  const pages = {
    '/a.html': () => page('Page A', snippet(tally, pv), '<a id="to-b" href="/b.html">to B</a>'),
    '/b.html': () => page('Page B', snippet(tally, pv), '<p>B</p>'),
    '/links.html': () =>
      page(
        'Links',
        snippet(tally, pv),
        `<a id="out" href="https://other.example.net/x">elsewhere</a>
         <a id="pdf" href="/files/report.pdf">report</a>
         <a id="internal" href="/b.html">internal</a>`,
      ),
    '/spa.html': () =>
      page(
        'SPA Home',
        snippet(tally, "_paq.push(['enableSpaTracking']);" + pv),
        `<button id="nav" onclick="history.pushState({}, '', '/spa/second'); document.title = 'SPA Second';">go</button>`,
      ),
    '/search.html': () =>
      page('Search', snippet(tally, "_paq.push(['trackSiteSearch', 'privacy', 'docs', 3]);"), '<p>results</p>'),
    '/heartbeat.html': () =>
      page('Heartbeat', snippet(tally, "_paq.push(['enableHeartBeatTimer', 1]);" + pv), '<p>read me</p>'),
    '/policy.html': () =>
      page(
        'Privacy policy',
        '',
        `<h1>Privacy policy</h1><iframe id="optout" src="${tally.url}/optout?idsite=1&lang=en" width="100%" height="600"></iframe>`,
      ),
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    const make = pages[path] || (path.startsWith('/spa/') ? pages['/spa.html'] : null);
    if (path.startsWith('/files/')) {
      res.writeHead(204).end(); // a download that does not leave the page
    } else if (make) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(make());
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  site.port = server.address().port;
  site.url = `http://localhost:${site.port}`;
  site.stop = () => new Promise((r) => server.close(r));
  return site;
}

/** Headless Chromium as this machine runs it (no network beyond loopback). */
export async function startBrowser() {
  return startBrowserWith([]);
}

/** A fresh browser profile; requests off loopback are aborted and listed in `offsite`. */
export async function newContext(browser, options = {}) {
  const context = await browser.newContext({
    userAgent: BROWSER_UA,
    viewport: { width: 1280, height: 720 },
    screen: { width: 1280, height: 720 },
    ...options,
  });
  context.offsite = [];
  await context.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === 'localhost' || host === '127.0.0.1') return route.continue();
    context.offsite.push(route.request().url());
    return route.abort();
  });
  return context;
}

// ---- Generalised helpers (appended for the cross-site test; the ones above keep the
// same-site `localhost` set-up of e2e.test.mjs). ----

/**
 * Starts `tally serve` with an embedded ClickHouse and `config` (TOML: sites, privacy, ...;
 * `listen`, `[clickhouse]` and `[sink]` are added here). Resolves when both answer. `url` is
 * the collector's own http address on loopback, for requests sent from Node.
 */
export async function startTallyWith(config) {
  const bin = tallyBin();
  const dir = mkdtempSync(join(tmpdir(), 'tally-e2e-'));
  writeFileSync(
    join(dir, 'tally.toml'),
    `listen = "127.0.0.1:0"
${config}
[clickhouse]
embedded_dir = "${join(dir, 'ch')}"
[sink]
flush_ms = 50
`,
  );
  const child = spawn(bin, ['serve', '--config', join(dir, 'tally.toml')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // No country database fetched from the npm registry at start.
    env: { ...process.env, TALLY_GEO_AUTO: 'false' },
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout });
  const found = {};
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tally did not start:\n${stderr}`)), 60_000);
    child.on('exit', (code) => reject(new Error(`tally exited (${code}):\n${stderr}`)));
    lines.on('line', (line) => {
      let m;
      if ((m = line.match(/^tally listening on (http:\/\/\S+)/))) found.base = m[1];
      if ((m = line.match(/^events stored in ClickHouse at (http:\/\/\S+), database (\w+)/))) {
        found.ch = m[1];
        found.db = m[2];
      }
      if (found.base && found.ch) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    url: `http://127.0.0.1:${new URL(found.base).port}`,
    ch: found.ch,
    db: found.db,
    /** The configuration file, for `tally user|key|rollup --config` (see `tallyCli`). */
    config: join(dir, 'tally.toml'),
    logs: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function tallyBin() {
  const bin = process.env.TALLY_BIN || join(repo, 'target/debug/tally');
  if (!existsSync(bin)) throw new Error(`${bin} missing: run cargo build first`);
  return bin;
}

/**
 * Runs `tally ARGS --config <the running collector's config>` (the command then uses the
 * embedded ClickHouse that collector runs), with `input` on standard input (a password for
 * `tally user add`). Resolves to its standard output; rejects with its standard error when it
 * fails or takes more than a minute.
 */
export function tallyCli(tally, args, input = '') {
  return new Promise((resolve, reject) => {
    const child = execFile(
      tallyBin(),
      [...args, '--config', tally.config],
      { timeout: 60_000, env: { ...process.env, TALLY_GEO_AUTO: 'false' } },
      (err, stdout, stderr) => (err ? reject(new Error(`tally ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout)),
    );
    child.stdin.end(input);
  });
}

/**
 * `barrier` for a page `url` of the site under test (whose domains the hit must match): one
 * page view sent straight to the collector; once it is stored, every hit sent before it has
 * been decided.
 */
export async function barrierAt(tally, tag, url) {
  const title = `barrier-${tag}`;
  const q = new URLSearchParams({ idsite: '1', rec: '1', url, action_name: title, send_image: '0' });
  const r = await fetch(`${tally.url}/matomo.php?${q}`, { headers: { 'User-Agent': BROWSER_UA } });
  if (r.status !== 204) throw new Error(`barrier hit answered ${r.status}`);
  const rows = await waitRows(tally, `SELECT count() AS n FROM events WHERE title = '${title}'`, (r) => Number(r[0]?.n) >= 1);
  if (!(Number(rows[0]?.n) >= 1)) throw new Error(`barrier ${tag} not stored`);
}

/** `startBrowser` with more command-line switches (host mapping, certificate pins). */
export async function startBrowserWith(extraArgs) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

/** `newContext` for pages on the given host names: a request to any other host is aborted and listed in `offsite`. */
export async function newContextFor(browser, hosts, options = {}) {
  const context = await browser.newContext({
    userAgent: BROWSER_UA,
    viewport: { width: 1280, height: 720 },
    screen: { width: 1280, height: 720 },
    ...options,
  });
  context.offsite = [];
  await context.route('**/*', (route) => {
    if (hosts.includes(new URL(route.request().url()).hostname)) return route.continue();
    context.offsite.push(route.request().url());
    return route.abort();
  });
  return context;
}

/**
 * A regular Chromium profile (not the incognito-like context `newContext` makes) in a fresh
 * user-data directory, removed on `close()`, with `startBrowser`'s switches and `extraArgs`,
 * and `preferences` (Chromium's `Default/Preferences`, e.g. cookie settings) written before it
 * starts. Requests to hosts other than `hosts` are aborted and listed in `offsite`.
 */
export async function newProfileFor(hosts, extraArgs, { preferences, ...options } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tally-profile-'));
  if (preferences) {
    mkdirSync(join(dir, 'Default'));
    writeFileSync(join(dir, 'Default', 'Preferences'), JSON.stringify(preferences));
  }
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
    userAgent: BROWSER_UA,
    viewport: { width: 1280, height: 720 },
    screen: { width: 1280, height: 720 },
    ...options,
  });
  context.offsite = [];
  await context.route('**/*', (route) => {
    if (hosts.includes(new URL(route.request().url()).hostname)) return route.continue();
    context.offsite.push(route.request().url());
    return route.abort();
  });
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  };
  return context;
}
