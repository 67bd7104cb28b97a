// The shipped files: they must be what src/ builds to (dist/ is committed because the
// collector embeds it), and together stay within the budget of 60 KB gzipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { build, DIST, FILES } from '../scripts/build.mjs';

const BUDGET_GZIPPED = 60 * 1024;

test('dist/ is the build of src/ (run `npm run build`)', async () => {
  const built = await build();
  for (const file of FILES) assert.equal(readFileSync(DIST + file, 'utf8'), built[file], `dist/${file} is stale`);
});

test(`dist/dashboard.js + dist/dashboard.css are at most ${BUDGET_GZIPPED} bytes gzipped`, () => {
  let total = 0;
  for (const file of FILES) {
    const code = readFileSync(DIST + file);
    const gz = gzipSync(code, { level: 9 }).length;
    total += gz;
    console.log(`${file}: ${code.length} bytes minified, ${gz} bytes gzipped`);
  }
  console.log(`dashboard total: ${total} bytes gzipped (budget ${BUDGET_GZIPPED})`);
  assert.ok(total <= BUDGET_GZIPPED, `${total} bytes gzipped is over the ${BUDGET_GZIPPED}-byte budget`);
});

test('the bundle asks nothing of another origin', () => {
  const js = readFileSync(DIST + 'dashboard.js', 'utf8');
  const css = readFileSync(DIST + 'dashboard.css', 'utf8');
  assert.doesNotMatch(css, /@import|url\(\s*['"]?(https?:)?\/\//);
  assert.doesNotMatch(js, /fetch\(\s*['"`]https?:/);
});
