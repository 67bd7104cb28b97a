// Signing in to the dashboard over plain http on a host that is not localhost, in headless
// Chromium and Firefox ESR: the case where browsers send no fetch metadata (`Sec-Fetch-Site`
// goes only to secure contexts, and localhost counts as one), so the collector's check that a
// sign-in form comes from its own origin rests on the `Origin` header alone. A page policy of
// `Referrer-Policy: no-referrer` turns that header into `null` and refused every such sign-in;
// this test would fail again if it came back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTallyWith, tallyCli } from './harness.mjs';
import { makeCertificate } from './crosssite.mjs';
import { launch, startGuard } from './browsers.mjs';

const HOST = 'dash.test';
const PASSWORD = 'correct horse battery';
let tally, guard, tls;

before(async () => {
  tally = await startTallyWith(`[[sites]]
id = 1
name = "Institute"
domains = ["institute.example"]
`);
  await tallyCli(tally, ['user', 'add', 'ada', '--admin'], PASSWORD + '\n');
  guard = await startGuard();
  tls = makeCertificate([HOST]);
});

after(async () => {
  await tally?.stop();
  await guard?.stop();
});

for (const kind of ['chromium', 'firefox']) {
  test(`${kind}: sign-in over plain http at ${HOST} reaches the dashboard`, async () => {
    const b = await launch(kind, { spki: tls.spki, ca: tls.ca, hosts: [HOST], guard });
    try {
      const page = await b.page();
      const origin = `http://${HOST}:${new URL(tally.url).port}`;
      await page.goto(`${origin}/`);
      assert.equal(new URL(page.url()).pathname, '/login', 'signed out, / leads to the sign-in page');
      assert.equal(await page.evaluate(() => window.isSecureContext), false, 'not a secure context: no fetch metadata');
      await page.type('input[name=name]', 'ada');
      await page.type('input[name=password]', PASSWORD);
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      assert.equal(new URL(page.url()).pathname, '/', `signed in, on the dashboard (page says: ${await page.evaluate(() => document.body.innerText.slice(0, 200))})`);
      await page.waitForSelector('#tally-config', { timeout: 10_000 });
      const config = await page.evaluate(() => JSON.parse(document.getElementById('tally-config').textContent));
      assert.equal(config.user?.name, 'ada');
      // The page's own requests; the browser's background services (Chromium checks a typed
      // password against its leak service) go to the guard proxy, which refuses them.
      assert.deepEqual(b.offsite, [], 'no request of the page left the test host');
    } finally {
      await b.close();
    }
  });
}
