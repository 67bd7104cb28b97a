// tally end to end in headless Chromium: the tracker on a test site, the collector, the
// ClickHouse it embeds, and the opt-out page. Each test tags its pages with `?t=<tag>` and
// looks for its own rows only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pngjs from 'pngjs';
const { PNG } = pngjs;
import { startTally, startSite, startBrowser, newContext, sql, waitRows, barrier } from './harness.mjs';

let tally, site, browser;
const contexts = [];

before(async () => {
  site = await startSite();
  tally = await startTally(site.port);
  site.tally = tally;
  browser = await startBrowser();
});

after(async () => {
  for (const c of contexts) {
    const unexpected = c.offsite.filter((u) => !(c.allowOffsite || []).includes(u));
    assert.deepEqual(unexpected, [], 'no request may leave the machine');
  }
  await browser?.close();
  await site?.stop();
  await tally?.stop();
});

async function context(options) {
  const c = await newContext(browser, options);
  contexts.push(c);
  return c;
}

const rowsFor = (tag, cols = '*') =>
  sql(tally, `SELECT ${cols} FROM events WHERE url LIKE '%t=${tag}%' OR referrer LIKE '%t=${tag}%' ORDER BY ts, kind`);

const waitFor = (tag, n, cols = '*') =>
  waitRows(
    tally,
    `SELECT ${cols} FROM events WHERE url LIKE '%t=${tag}%' ORDER BY ts, kind`,
    (rows) => rows.length >= n,
  );

test('a page view is stored with url, title, referrer and resolution', async () => {
  const c = await context();
  const p = await c.newPage();
  await p.goto(`${site.url}/a.html?t=pv`);
  await waitFor('pv', 1);
  await p.click('#to-b');
  await p.waitForURL('**/b.html');
  // B was reached from A: A is B's referrer.
  const rows = await waitRows(
    tally,
    `SELECT title, url, referrer, resolution, kind FROM events WHERE title IN ('Page A', 'Page B') AND (url LIKE '%t=pv%' OR referrer LIKE '%t=pv%') ORDER BY ts`,
    (r) => r.length >= 2,
  );
  rows.sort((x, y) => x.title.localeCompare(y.title)); // both may fall in the same second
  assert.deepEqual(rows[0], {
    title: 'Page A',
    url: `${site.url}/a.html?t=pv`,
    referrer: '',
    resolution: '1280x720',
    kind: 'pageview',
  });
  assert.deepEqual(rows[1], {
    title: 'Page B',
    url: `${site.url}/b.html`,
    referrer: `${site.url}/a.html?t=pv`,
    resolution: '1280x720',
    kind: 'pageview',
  });
});

test('an SPA navigation adds a page view with the new url and title', async () => {
  const c = await context();
  const p = await c.newPage();
  await p.goto(`${site.url}/spa.html?t=spa`);
  await waitFor('spa', 1);
  await p.click('#nav');
  const rows = await waitRows(
    tally,
    `SELECT title, url, referrer FROM events WHERE url LIKE '%t=spa%' OR referrer LIKE '%t=spa%' ORDER BY ts, title`,
    (r) => r.length >= 2,
  );
  assert.equal(rows.length, 2);
  assert.deepEqual(rows.find((r) => r.title === 'SPA Second'), {
    title: 'SPA Second',
    url: `${site.url}/spa/second`,
    referrer: `${site.url}/spa.html?t=spa`,
  });
});

test('clicks on an outlink and on a PDF are stored as outlink and download', async () => {
  const c = await context();
  c.allowOffsite = ['https://other.example.net/x'];
  const p = await c.newPage();
  await p.goto(`${site.url}/links.html?t=links`);
  await waitFor('links', 1);
  await p.click('#pdf');
  await p.click('#out').catch(() => {}); // the navigation itself is aborted: nothing leaves the machine
  const rows = await waitFor('links', 3, 'kind, target_url');
  assert.deepEqual(
    rows.filter((r) => r.kind !== 'pageview').sort((a, b) => a.kind.localeCompare(b.kind)),
    [
      { kind: 'download', target_url: `${site.url}/files/report.pdf` },
      { kind: 'outlink', target_url: 'https://other.example.net/x' },
    ],
  );
  // The outlink's navigation was attempted and aborted by the harness: it is the only request
  // allowed to have tried to leave the machine.
  c.allowOffsite = ['https://other.example.net/x'];
});

test('a site search is stored with keyword, category and count', async () => {
  const c = await context();
  const p = await c.newPage();
  await p.goto(`${site.url}/search.html?t=search`);
  const rows = await waitFor('search', 1, 'kind, search_keyword, search_category, search_count');
  assert.deepEqual(rows, [{ kind: 'search', search_keyword: 'privacy', search_category: 'docs', search_count: 3 }]);
});

test('the heartbeat stores pings of the page view, and so a dwell time', async () => {
  const c = await context();
  const p = await c.newPage();
  await p.goto(`${site.url}/heartbeat.html?t=beat`);
  for (let i = 0; i < 3; i++) {
    await p.mouse.move(100 + i * 10, 100); // activity since the last beat
    await p.waitForTimeout(1200);
  }
  const rows = await waitRows(
    tally,
    `SELECT countIf(kind = 'ping') AS pings, uniqExact(pv_id) AS views,
            toUInt32(max(ts)) - toUInt32(minIf(ts, kind = 'pageview')) AS dwell
     FROM events WHERE url LIKE '%t=beat%'`,
    (r) => Number(r[0]?.pings) >= 2,
  );
  // JSONEachRow quotes 64-bit integers.
  const [pings, views, dwell] = [rows[0].pings, rows[0].views, rows[0].dwell].map(Number);
  assert.ok(pings >= 2, `pings: ${JSON.stringify(rows)}`);
  assert.equal(views, 1, 'pings carry the page view id');
  assert.ok(dwell >= 1, `dwell time ${dwell} s`);
});

async function optOutVia(p) {
  await p.click('button[type=submit]');
  await p.waitForURL(/done=1/);
  assert.match(await p.textContent('body'), /opted out/i);
}

test('after opting out on the opt-out page, nothing is stored; opting in again counts again', async () => {
  const c = await context();
  const p = await c.newPage();
  await p.goto(`${tally.url}/optout?idsite=1&lang=en`);
  await optOutVia(p);
  await p.goto(`${site.url}/a.html?t=out1`);
  await p.goto(`${site.url}/b.html?t=out1`);
  await barrier(tally, 'out1');
  assert.deepEqual(await rowsFor('out1'), []);

  await p.goto(`${tally.url}/optout?idsite=1&lang=en`);
  await p.click('button[type=submit]');
  await p.waitForURL(/done=1/);
  await p.goto(`${site.url}/a.html?t=in1`);
  assert.equal((await waitFor('in1', 1)).length, 1);
});

test('after opting out inside the iframe of a privacy policy, nothing is stored', async () => {
  const c = await context();
  const p = await c.newPage();
  await p.goto(`${site.url}/policy.html`);
  const frame = p.frameLocator('#optout');
  await frame.locator('button[type=submit]').click();
  await assert.doesNotReject(frame.locator('text=/opted out/i').first().waitFor());
  await p.goto(`${site.url}/a.html?t=frame`);
  await barrier(tally, 'frame');
  assert.deepEqual(await rowsFor('frame'), []);
});

test("after the tracker's optUserOut, nothing is stored", async () => {
  const c = await context();
  const p = await c.newPage();
  await p.goto(`${site.url}/b.html?t=js-before`);
  await waitFor('js-before', 1);
  await p.evaluate(() => window._paq.push(['optUserOut']));
  assert.equal(await p.evaluate(() => window.Tally.isUserOptedOut()), true);
  await p.goto(`${site.url}/a.html?t=js-after`);
  await barrier(tally, 'js');
  assert.deepEqual(await rowsFor('js-after'), []);
});

for (const [name, script] of [
  ['Do Not Track', () => Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' })],
  ['Global Privacy Control', () => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true })],
]) {
  test(`with ${name} set in the browser, nothing is stored`, async () => {
    const tag = name.replace(/ /g, '').toLowerCase();
    const c = await context();
    await c.addInitScript(script);
    const p = await c.newPage();
    await p.goto(`${site.url}/a.html?t=${tag}`);
    await p.click('#to-b');
    await p.waitForURL('**/b.html');
    await barrier(tally, tag);
    assert.deepEqual(await rowsFor(tag), []);
  });
}

/** Share of pixels in `box` (page pixels) of a decoded PNG that differ from white. */
function inkShare(png, box = { x: 0, y: 0, width: png.width, height: png.height }) {
  let ink = 0;
  let all = 0;
  const x1 = Math.min(png.width, Math.round(box.x + box.width));
  const y1 = Math.min(png.height, Math.round(box.y + box.height));
  for (let y = Math.max(0, Math.round(box.y)); y < y1; y++) {
    for (let x = Math.max(0, Math.round(box.x)); x < x1; x++) {
      const i = (y * png.width + x) * 4;
      const [r, g, b, a] = png.data.subarray(i, i + 4);
      all++;
      if (a > 0 && (r < 235 || g < 235 || b < 235)) ink++;
    }
  }
  return all ? ink / all : 0;
}

test('the opt-out page renders in English and German with its button visible and uncovered', async () => {
  const dir = fileURLToPath(new URL('./artifacts/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const c = await context({ viewport: { width: 900, height: 900 } });
  const p = await c.newPage();
  for (const [lang, heading, button] of [
    ['en', /^Web analytics on /, 'Opt out: do not record my visits'],
    ['de', /^Webanalyse auf /, 'Widersprechen: meine Besuche nicht erfassen'],
  ]) {
    await p.goto(`${tally.url}/optout?idsite=1&lang=${lang}`);
    // In the language asked for, as rendered (innerText: what is laid out, not just present).
    assert.equal(await p.getAttribute('html', 'lang'), lang);
    assert.match(await p.locator('h1').innerText(), heading, lang);
    const b = p.locator('button[type=submit]');
    assert.equal(await b.innerText(), button, lang);

    // The button can be brought into the viewport, and then it is there, with a size, and what
    // the browser finds at its centre is the button (not something laid over it).
    await b.scrollIntoViewIfNeeded();
    assert.ok(await b.isVisible(), `${lang}: button not visible`);
    const box = await b.boundingBox();
    assert.ok(box && box.width >= 40 && box.height >= 16, `${lang}: button box ${JSON.stringify(box)}`);
    assert.ok(
      box.x >= 0 && box.y >= 0 && box.x + box.width <= 900 && box.y + box.height <= 900,
      `${lang}: button outside the viewport: ${JSON.stringify(box)}`,
    );
    const hit = await p.evaluate(
      ([x, y]) => {
        const e = document.elementFromPoint(x, y);
        return e ? e.closest('button')?.type ?? e.outerHTML.slice(0, 80) : null;
      },
      [box.x + box.width / 2, box.y + box.height / 2],
    );
    assert.equal(hit, 'submit', `${lang}: the button's centre shows ${hit}`);

    // The screenshot is not blank, and the button is painted where it is laid out.
    const file = `${dir}optout-${lang}.png`;
    const shot = PNG.sync.read(await p.screenshot({ path: file, fullPage: true }));
    const page = inkShare(shot);
    assert.ok(page > 0.02, `${lang}: ${file} is nearly blank (${(page * 100).toFixed(2)}% ink)`);
    const scroll = await p.evaluate(() => ({ x: window.scrollX, y: window.scrollY }));
    const onPage = { ...box, x: box.x + scroll.x, y: box.y + scroll.y };
    const drawn = inkShare(shot, onPage);
    assert.ok(drawn > 0.05, `${lang}: button area ${JSON.stringify(onPage)} is ${(drawn * 100).toFixed(1)}% ink`);
  }
});
