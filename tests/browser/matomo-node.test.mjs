// Matomo's own Node.js tracker (npm `matomo-tracker`, matomo-org/matomo-nodejs-tracker), unchanged,
// against a real `tally serve`: the server-side sender a back-end integration uses. Node's http
// client sends no User-Agent, which tally used to drop as a bot; it is stored now, flagged as a
// program (`device = 'unknown'`), and the bulk call gets Matomo's JSON summary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startTallyWith, waitRows, barrierAt } from './harness.mjs';

const MatomoTracker = createRequire(import.meta.url)('matomo-tracker');
const TOKEN = 'node-tracker-token-0123456789';
let tally;

before(async () => {
  tally = await startTallyWith(`token_auth = "${TOKEN}"
[[sites]]
id = 1
name = "Shop back-end"
domains = ["shop.example.org"]
`);
});

after(async () => {
  await tally?.stop();
});

test("Matomo's Node.js tracker: single hits and a bulk request are stored", async () => {
  const tracker = new MatomoTracker(1, `${tally.url}/matomo.php`);
  const errors = [];
  tracker.on('error', (e) => errors.push(e));
  tracker.track({ url: 'https://shop.example.org/checkout', action_name: 'node-checkout' });
  tracker.track({
    url: 'https://shop.example.org/api/order',
    action_name: 'node-order',
    idgoal: 0,
    ec_id: 'A-1001',
    revenue: 42.5,
    ec_items: JSON.stringify([['SKU-9', 'Book', 'Books', 42.5, 1]]),
  });
  const summary = await new Promise((resolve) =>
    tracker.trackBulk(
      [
        { url: 'https://shop.example.org/a', action_name: 'node-bulk-a', token_auth: TOKEN, cip: '203.0.113.77' },
        { url: 'https://shop.example.org/b', action_name: 'node-bulk-b', e_c: 'Export', e_a: 'csv' },
        { url: 'https://elsewhere.example.net/', action_name: 'node-bulk-foreign' },
      ],
      resolve,
    ),
  );
  assert.deepEqual(JSON.parse(summary), { status: 'success', tracked: 2, invalid: 1 });
  await barrierAt(tally, 'node', 'https://shop.example.org/barrier');
  const rows = await waitRows(
    tally,
    "SELECT title, kind, device, ip, revenue FROM events WHERE title LIKE 'node-%' ORDER BY title",
    (r) => r.length >= 4,
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(
    rows.map((r) => [r.title, r.kind, r.device]),
    [
      ['node-bulk-a', 'pageview', 'unknown'],
      ['node-bulk-b', 'event', 'unknown'],
      ['node-checkout', 'pageview', 'unknown'],
      ['node-order', 'ecommerce_order', 'unknown'],
    ],
  );
  // `cip` is used only with the token, and truncated like any address.
  assert.equal(rows.find((r) => r.title === 'node-bulk-a').ip, '203.0.0.0');
  assert.equal(rows.find((r) => r.title === 'node-order').revenue, 42.5);
});
