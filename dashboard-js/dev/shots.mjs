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
await browser.close();
console.log(problems.length ? `\n${problems.length} problem(s):\n` + problems.join('\n') : '\nno problems');
