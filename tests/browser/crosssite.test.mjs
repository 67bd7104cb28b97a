// The opt-out where it matters: the site and the collector on different sites
// (https://site.test and https://stats.example, two registrable domains), the opt-out page
// framed in the site's privacy policy, and the collector's own cookie check, not tally.js,
// dropping the hits. Chromium reaches both names on loopback through its host mapping and
// trusts a certificate made for this run by its public key only (see README.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startTallyWith, startBrowserWith, newContextFor, newProfileFor, sql, waitRows, barrierAt } from './harness.mjs';
import { makeCertificate, startCrossSite, startCollectorProxy } from './crosssite.mjs';

const SITE = 'site.test';
const COLLECTOR = 'stats.example';
const HOSTS = [SITE, COLLECTOR];
const artifacts = fileURLToPath(new URL('./artifacts/', import.meta.url));

let tally, browser, browserArgs;
const setups = {}; // by scheme: { site, proxy }
const contexts = [];

before(async () => {
  const tls = makeCertificate([SITE, COLLECTOR]);
  for (const scheme of ['https', 'http']) {
    const site = await startCrossSite(scheme, SITE, tls);
    const proxy = await startCollectorProxy(scheme, COLLECTOR, tls);
    site.collector = proxy.url;
    setups[scheme] = { site, proxy };
  }
  // tally itself speaks plain http on loopback; the proxy in front of it is trusted to say
  // which scheme the browser used, and so which opt-out cookie the page sets.
  tally = await startTallyWith(`[[sites]]
id = 1
name = "Cross-site"
domains = ["${SITE}"]
frame_ancestors = ["${setups.https.site.url}", "${setups.http.site.url}"]
[privacy]
trusted_proxies = ["127.0.0.1/32"]
`);
  for (const { proxy } of Object.values(setups)) proxy.target = tally.url;
  browserArgs = [
    `--host-resolver-rules=MAP ${SITE} 127.0.0.1, MAP ${COLLECTOR} 127.0.0.1`,
    // Only this run's leaf key is trusted, so the pages are real secure contexts.
    `--ignore-certificate-errors-spki-list=${tls.spki}`,
  ];
  browser = await startBrowserWith(browserArgs);
  mkdirSync(artifacts, { recursive: true });
});

after(async () => {
  for (const c of contexts) assert.deepEqual(c.offsite, [], 'no request may leave the machine');
  await browser?.close();
  for (const { site, proxy } of Object.values(setups)) {
    await site.stop();
    await proxy.stop();
  }
  await tally?.stop();
});

/** Records the tracking requests of a browser context that may reach the two names only. */
function tracked(c) {
  c.setDefaultTimeout(10_000);
  c.tracking = [];
  c.on('request', (r) => {
    if (new URL(r.url()).pathname === '/matomo.php') c.tracking.push(r);
  });
  contexts.push(c);
  return c;
}

/** A fresh incognito-like context, as Playwright makes them (third-party cookies blocked). */
const context = async () => tracked(await newContextFor(browser, HOSTS));

/** Polls `check` until it returns something truthy, for at most 10 s. */
async function until(what, check) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A hit's body carries the page's URL, and so its `?t=<tag>`.
const carries = (body, tag) => (body ?? '').includes(`t%3D${tag}`);

/** Tracking requests of page `tag` as the proxy in front of the collector received them. */
const received = (proxy, tag) =>
  proxy.seen.filter((e) => e.path.startsWith('/matomo.php') && carries(e.body, tag) && e.status);

/** Waits until the browser sent `n` tracking requests for `tag` and the collector answered them. */
async function sent(c, proxy, tag, n) {
  await until(`${n} tracking requests of ${tag}`, () => received(proxy, tag).length >= n);
  // The browser's own record of them: sent from the site's page to the collector.
  const own = c.tracking.filter((r) => carries(r.postData(), tag));
  assert.equal(own.length, n, `Chromium sent ${n} tracking requests of ${tag}`);
  return received(proxy, tag);
}

const rows = (tag) => sql(tally, `SELECT kind, url FROM events WHERE url LIKE '%t=${tag}%' ORDER BY ts, kind`);

/** tally's count of hits it dropped for the opt-out cookie. */
async function droppedForCookie() {
  const text = await (await fetch(`${tally.url}/metrics`)).text();
  const m = text.match(/^tally_hits_dropped_total\{reason="optout_cookie"\} (\d+)/m);
  return m ? Number(m[1]) : 0;
}

const hasOptoutCookie = (cookieHeader) => /(^|;\s*)tally_ignore=/.test(cookieHeader ?? '');

/** Presses the button in the opt-out frame of the privacy policy; returns the frame's status line. */
async function pressInFrame(p, expect) {
  const frame = p.frameLocator('#optout');
  await frame.locator('button[type=submit]').click();
  const status = frame.locator('[role=status]', { hasText: expect });
  await status.waitFor();
  return status.textContent();
}

/**
 * The scenario over https in context `c`: a visit is counted; the visitor opts out in the
 * privacy policy's frame; the site's page views and an event then reach the collector with the
 * opt-out cookie and none is stored; opting back in counts again. `copies` are the opt-out
 * cookies the browser is expected to keep (by partition key, `null` for the plain copy).
 */
async function optOutAcrossSites(c, tag, copies) {
  const { site, proxy } = setups.https;
  const p = await c.newPage();

  // (a) A visit is counted.
  await p.goto(`${site.url}/page.html?t=${tag}-a`);
  assert.equal(await p.evaluate(() => window.isSecureContext), true, 'the site is a secure context');
  assert.deepEqual(await waitRows(tally, `SELECT kind FROM events WHERE url LIKE '%t=${tag}-a%'`, (r) => r.length >= 1), [
    { kind: 'pageview' },
  ]);

  // (b) Opting out inside the privacy policy's iframe of the collector's page.
  await p.goto(`${site.url}/policy.html`);
  const frame = p.frameLocator('#optout');
  assert.match(await frame.locator('[role=status]').textContent(), /currently counted/);
  assert.match(await pressInFrame(p, /opted out/), /You have opted out/);
  await p.screenshot({ path: `${artifacts}crosssite-optout-https-${tag}.png`, fullPage: true });
  // The cookies are the collector's; the Partitioned (CHIPS) copy is kept in the partition of
  // the site that framed the page.
  const cookies = (await c.cookies()).filter((k) => k.name === 'tally_ignore');
  assert.deepEqual(
    cookies
      .map((k) => ({ domain: k.domain, secure: k.secure, sameSite: k.sameSite, partitionKey: k.partitionKey ?? null }))
      .sort((a, b) => (a.partitionKey ?? '').localeCompare(b.partitionKey ?? '')), // the plain copy first
    copies.map((partitionKey) => ({ domain: COLLECTOR, secure: true, sameSite: 'None', partitionKey })),
  );

  // (c) Back on the site: tally.js does not know (the cookie is not the site's) and sends page
  // views and an event; the browser sends the partitioned cookie with them; nothing is stored.
  const droppedBefore = await droppedForCookie();
  await p.goto(`${site.url}/page.html?t=${tag}-out`);
  assert.equal(await p.evaluate(() => window.Tally.isUserOptedOut()), false, 'the tracker itself does not hold hits back');
  await p.click('#event');
  await p.reload();
  const out = await sent(c, proxy, `${tag}-out`, 3);
  for (const e of out) {
    const sentCopies = (e.cookie ?? '').split(/;\s*/).filter((k) => k.startsWith('tally_ignore=')).length;
    assert.equal(sentCopies, copies.length, `hit sent with every copy of the opt-out cookie, got Cookie: ${e.cookie}`);
    assert.equal(e.status, 204);
  }
  assert.deepEqual(out.map((e) => new URLSearchParams(e.body).has('e_c')).sort(), [false, false, true], 'two page views, one event');
  await barrierAt(tally, `${tag}-out`, `${site.url}/barrier`);
  assert.deepEqual(await rows(`${tag}-out`), []);
  assert.equal((await droppedForCookie()) - droppedBefore, 3, 'the collector dropped them for the opt-out cookie');

  // (d) Opting back in, in the same profile and the same frame, counts again.
  await p.goto(`${site.url}/policy.html`);
  assert.match(await frame.locator('[role=status]').textContent(), /opted out/);
  assert.match(await pressInFrame(p, /currently counted/), /currently counted/);
  assert.deepEqual((await c.cookies()).filter((k) => k.name === 'tally_ignore'), [], 'both copies cleared');
  await p.goto(`${site.url}/page.html?t=${tag}-in`);
  await p.click('#event');
  const back = await sent(c, proxy, `${tag}-in`, 2);
  assert.ok(back.every((e) => !hasOptoutCookie(e.cookie)), 'no opt-out cookie any more');
  const stored = await waitRows(tally, `SELECT kind FROM events WHERE url LIKE '%t=${tag}-in%'`, (r) => r.length >= 2);
  assert.deepEqual(stored.map((r) => r.kind).sort(), ['event', 'pageview']);
}


// Playwright's contexts block third-party cookies, as Chrome's incognito windows do (and
// Safari and Firefox's strict mode everywhere): the plain SameSite=None copy is refused in
// the frame ("UserPreferences"), the Partitioned copy alone is kept and sent, so it is what
// this test proves. Without that copy the opt-out would silently do nothing here.
test('https, cross-site, third-party cookies blocked: the partitioned opt-out cookie stops the hits at the collector', async () => {
  await optOutAcrossSites(await context(), 'xsp', [`https://${SITE}`]);
});

// With third-party cookies allowed (Chrome's default for regular windows; this Chromium,
// 156 under Playwright, blocks them even in a regular profile, so the profile's setting says
// so explicitly) both copies are kept, both are sent, and opting back in clears both.
test('https, cross-site, third-party cookies allowed: both opt-out cookies stop the hits at the collector', async () => {
  const allowThirdParty = { profile: { cookie_controls_mode: 0, block_third_party_cookies: false } };
  const c = tracked(await newProfileFor(HOSTS, browserArgs, { preferences: allowThirdParty }));
  try {
    await optOutAcrossSites(c, 'xsr', [null, `https://${SITE}`]);
  } finally {
    await c.close();
  }
});

// Over plain http the opt-out cookie is SameSite=Lax (browsers refuse SameSite=None without
// Secure), and a Lax cookie is neither set in a cross-site frame nor sent with cross-site
// tracking requests: the framed opt-out cannot work when the site and the collector are
// different sites. Until issue 14 this was a known failure whose frame still said "opted out";
// now the page checks whether the browser sent the cookie back after the form, and says that
// the browser did not store the choice instead of pretending. The remedy is the widget on the
// site's own page (the tests below). (Until the page's Referrer-Policy became `same-origin` the
// form was even refused: on a plain-http origin Chromium sends no Sec-Fetch-Site, and
// `no-referrer` made the form's `Origin` "null".)
test('http, cross-site: the opt-out in the iframe says the browser did not store the choice', async (t) => {
  const { site, proxy } = setups.http;
  const c = await context();
  const p = await c.newPage();
  await p.goto(`${site.url}/policy.html`);
  await p.frameLocator('#optout').locator('button[type=submit]').click();
  // Whatever the collector answers to the form is what the frame shows next.
  const post = await until('the opt-out form to be answered', () =>
    proxy.seen.find((e) => e.method === 'POST' && e.path === '/optout' && e.status),
  );
  const first = `${proxy.url}/optout?idsite=1&lang=en`;
  const frame = await until('the answer in the frame', async () => {
    const f = p.frames().find((f) => f.url().startsWith(`${proxy.url}/optout`) && f.url() !== first);
    return f && (await f.textContent('body').catch(() => null)) && f;
  });
  const status = await frame.locator('[role=status]').textContent();
  const body = await frame.textContent('body');
  await p.screenshot({ path: `${artifacts}crosssite-optout-http.png`, fullPage: true });
  const cookies = (await c.cookies()).filter((k) => k.name === 'tally_ignore');
  await p.goto(`${site.url}/page.html?t=xh-out`);
  await p.click('#event');
  const out = await sent(c, proxy, 'xh-out', 2);
  await barrierAt(tally, 'xh-out', `${site.url}/barrier`);
  const stored = await rows('xh-out');
  t.diagnostic(`opt-out form: POST answered ${post.status}; Origin ${post.origin}; Sec-Fetch-Site ${post.fetchSite}`);
  t.diagnostic(`opt-out frame then said: ${JSON.stringify(status)}`);
  t.diagnostic(`Cookie headers on the hits: ${JSON.stringify(out.map((e) => e.cookie))}`);
  assert.equal(post.status, 303, 'the form is accepted');
  assert.deepEqual(cookies, [], 'Chromium refused the Lax cookie in the cross-site frame');
  assert.match(status, /currently counted/, 'the frame shows the real state');
  assert.match(body, /did not store your choice on this page/);
  assert.doesNotMatch(body, /has been saved/);
  // What the frame said is true: the hits are stored.
  assert.deepEqual(stored.map((r) => r.kind).sort(), ['event', 'pageview']);
});

// The first-party opt-out (issue 14): the widget from the collector (/optout.js) runs on the
// site's own privacy page, under a strict CSP, and keeps the choice on the site, where tally.js
// reads it before sending anything. Over https and plain http alike: nothing depends on
// third-party cookies.
for (const scheme of ['https', 'http']) {
  test(`${scheme}, cross-site: the widget on the site's privacy page stops tally.js from sending`, async () => {
    const { site, proxy } = setups[scheme];
    const tag = `xw${scheme[4] ?? ''}`;
    const c = await context();
    const p = await c.newPage();
    const refused = [];
    p.on('console', (m) => /Content Security Policy|Refused/i.test(m.text()) && refused.push(m.text()));

    await p.goto(`${site.url}/widget.html`);
    const status = p.locator('#tally-optout-status[role=status]');
    await status.filter({ hasText: /currently counted/ }).waitFor();
    await p.locator('#tally-optout-button').click();
    await p.locator('#tally-optout-result', { hasText: 'Your choice has been saved.' }).waitFor();
    assert.match(await status.textContent(), /You have opted out/);
    await p.screenshot({ path: `${artifacts}crosssite-widget-${scheme}.png`, fullPage: true });
    // Kept first-party, on the site: its own cookie and localStorage.
    const own = (await c.cookies()).filter((k) => k.name === 'tally_ignore');
    assert.deepEqual(own.map((k) => [k.domain, k.sameSite, k.secure]), [[SITE, 'Lax', scheme === 'https']]);
    assert.equal(await p.evaluate(() => localStorage.getItem('tally_ignore')), '1');

    // On the site's pages tally.js sees it and sends nothing at all.
    await p.goto(`${site.url}/page.html?t=${tag}-out`);
    await p.waitForFunction(() => window.Tally);
    assert.equal(await p.evaluate(() => window.Tally.isUserOptedOut()), true);
    await p.click('#event');
    await p.reload();
    await p.waitForFunction(() => window.Tally);
    await barrierAt(tally, `${tag}-out`, `${site.url}/barrier`);
    assert.deepEqual(c.tracking.filter((r) => carries(r.postData(), `${tag}-out`)), [], 'no tracking request left the browser');
    assert.deepEqual(await rows(`${tag}-out`), []);

    // Opting back in on the widget counts again.
    await p.goto(`${site.url}/widget.html`);
    await status.filter({ hasText: /opted out/ }).waitFor();
    await p.locator('#tally-optout-button').click();
    await p.locator('#tally-optout-result', { hasText: 'Your choice has been saved.' }).waitFor();
    assert.deepEqual((await c.cookies()).filter((k) => k.name === 'tally_ignore'), []);
    await p.goto(`${site.url}/page.html?t=${tag}-in`);
    await p.click('#event');
    await sent(c, proxy, `${tag}-in`, 2);
    const stored = await waitRows(tally, `SELECT kind FROM events WHERE url LIKE '%t=${tag}-in%'`, (r) => r.length >= 2);
    assert.deepEqual(stored.map((r) => r.kind).sort(), ['event', 'pageview']);
    assert.deepEqual(refused, [], 'the strict CSP refused nothing');
  });
}

// The collector's own page opened on its own, on another site than the site's: a choice made
// there could not reach the site's tracking, so it says so and offers none. Over https the
// server knows from Sec-Fetch-Dest; over plain http (no fetch metadata) the page's script does.
for (const scheme of ['https', 'http']) {
  test(`${scheme}, cross-site: the opt-out page opened on its own does not pretend`, async () => {
    const { proxy } = setups[scheme];
    const c = await context();
    const p = await c.newPage();
    await p.goto(`${proxy.url}/optout?idsite=1&lang=en`);
    const status = p.locator('[role=status]');
    assert.equal(await status.count(), 1, 'one status line');
    assert.match(await status.textContent(), /runs on a different website than Cross-site/);
    assert.equal(await p.locator('button[type=submit]').isVisible().catch(() => false), false, 'no button');
    assert.match(await p.textContent('body'), /please use the opt-out in the privacy policy of Cross-site/);
    await p.screenshot({ path: `${artifacts}crosssite-page-top-${scheme}.png`, fullPage: true });
  });
}
