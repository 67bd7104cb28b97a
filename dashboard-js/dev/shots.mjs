// Dev check (not shipped): opens the dev harness (dev/serve.mjs) in headless Chromium at 1280
// and 375 px, takes screenshots into /tmp/dash-shots/, runs axe-core in each view and lists
// its serious and critical violations, console errors, failed API calls, and any request
// that would leave the page's origin (aborted).
//   node dev/shots.mjs [http://127.0.0.1:8099]
import { chromium } from 'playwright-core';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const base = process.argv[2] ?? 'http://127.0.0.1:8099';
const out = process.env.SHOTS ?? '/tmp/dash-shots';
mkdirSync(out, { recursive: true });
const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
const problems = [];

async function view(name, width, path, act) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const origin = new URL(base).origin;
  await page.route('**/*', (route) => {
    if (new URL(route.request().url()).origin !== origin && !route.request().url().startsWith('blob:') && !route.request().url().startsWith('data:')) {
      problems.push(`${name}: request leaving the origin: ${route.request().url()}`);
      return route.abort();
    }
    return route.continue();
  });
  page.on('console', (m) => m.type() === 'error' && problems.push(`${name}: console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`${name}: ${r.status()} ${r.url()}`));
  await page.goto(base + path);
  await page.waitForLoadState('networkidle');
  if (act) await act(page);
  await page.waitForTimeout(400);
  const file = `${out}/${name}-${width}.png`;
  await page.screenshot({ path: file, fullPage: true });
  await page.evaluate(axe);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  for (const v of result.violations) {
    if (v.impact === 'serious' || v.impact === 'critical') problems.push(`${name}@${width}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.length}×: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')})`);
  }
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) problems.push(`${name}@${width}: page scrolls sideways by ${overflow}px`);
  console.log(`${file}  (axe: ${result.violations.map((v) => `${v.id}/${v.impact}`).join(', ') || 'none'})`);
  await context.close();
}

for (const width of [1280, 375]) {
  await view('today', width, '/?range=day');
  await view('30d-compare', width, '/?compare=previous_period&tab=sources');
  await view('filtered', width, '/?range=day&f=visit:browser|Firefox&tab=devices');
  await view('behaviour-de', width, '/?range=day&tab=behaviour', async (page) => {
    await page.getByRole('button', { name: /Auf Deutsch/ }).click();
  });
  await view('more', width, '/?range=day', async (page) => {
    const more = page.getByRole('button', { name: 'More' }).first();
    if (await more.isVisible()) await more.click();
  });
  await view('settings', width, '/?view=settings', async (page) => {
    await page.getByLabel('Name').first().fill('reporting script');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByLabel('Name').nth(1).fill('board');
    await page.getByRole('button', { name: 'Create link' }).click();
  });
}
// Behaviour: a click on a row filters (URL and chip), the chip removes it, back and forward
// restore the views, a CSV downloads with its name, "more" pages through the rows.
{
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  const check = (ok, what) => (ok ? console.log(`ok: ${what}`) : problems.push(`check failed: ${what}`));
  await page.goto(base + '/?range=day&tab=devices');
  await page.waitForLoadState('networkidle');
  const row = page.locator('section.card', { hasText: 'Browsers' }).locator('button.row-filter').first();
  const value = (await row.innerText()).trim();
  await row.click();
  await page.waitForLoadState('networkidle');
  check(new URL(page.url()).searchParams.getAll('f').includes(`visit:browser|${value}`), `row click adds f=visit:browser|${value} to the URL`);
  const chip = page.getByRole('button', { name: `Remove filter Browsers: ${value}` });
  check(await chip.isVisible(), 'the filter shows as a removable chip');
  await page.waitForFunction(() => document.querySelectorAll('.tile-value')[1]?.textContent !== '…');
  const filtered = await page.locator('.tile-value').nth(1).innerText();
  await chip.click();
  await page.waitForLoadState('networkidle');
  check(!page.url().includes('f='), 'removing the chip removes the filter from the URL');
  await page.waitForFunction(() => document.querySelectorAll('.tile-value')[1]?.textContent !== '…');
  const unfiltered = await page.locator('.tile-value').nth(1).innerText();
  check(filtered !== unfiltered, `visitors differ with and without the filter (${filtered} vs ${unfiltered})`);
  await page.goBack();
  await page.waitForLoadState('networkidle');
  check(page.url().includes('f=visit') && (await page.locator('.chip').count()) === 1, 'back brings the filter back');
  await page.goForward();
  await page.waitForLoadState('networkidle');
  check((await page.locator('.chip').count()) === 0, 'forward removes it again');
  await page.reload();
  await page.waitForLoadState('networkidle');
  check((await page.getByRole('tab', { name: 'Devices' }).getAttribute('aria-selected')) === 'true', 'reload keeps the tab');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download Browsers as CSV' }).click()]);
  const csv = readFileSync(await download.path(), 'utf8');
  check(/^tally-demo-site-browsers-\d{4}-\d{2}-\d{2}\.csv$/.test(download.suggestedFilename()) && csv.startsWith('visit:browser,visitors,percentage'), `CSV ${download.suggestedFilename()}: ${csv.split('\n')[0]}`);
  await page.goto(base + '/?range=day');
  await page.waitForLoadState('networkidle');
  await page.locator('section.card', { hasText: 'Pages' }).first().getByRole('button', { name: 'More' }).click();
  await page.waitForLoadState('networkidle');
  const pager = page.locator('dialog .pager span');
  check(/Rows 1–\d+ of \d+/.test(await pager.innerText()), `more view: ${await pager.innerText()}`);
  await page.screenshot({ path: `${out}/more-dialog-1280.png` });
  await page.keyboard.press('Escape');
  check((await page.locator('dialog').count()) === 0, 'Escape closes the more view');
  // Keyboard: the tabs move with the arrow keys.
  await page.getByRole('tab', { name: 'Pages' }).focus();
  await page.keyboard.press('ArrowRight');
  await page.waitForLoadState('networkidle');
  check((await page.evaluate(() => document.activeElement?.id)) === 'tab-sources', 'ArrowRight moves to the next tab');
  await context.close();
}
await browser.close();
console.log(problems.length ? `\n${problems.length} problem(s):\n` + problems.join('\n') : '\nno problems');
