// The shipped file: it must be what the source builds to (dist/ is committed because the
// collector embeds it), and it must stay within the size budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { build, DIST, FILES } from '../scripts/build.mjs';
import { fileURLToPath } from 'node:url';

// Plausible's script is about 1 KB, Matomo's about 23 KB; ours has Matomo's command set in 2 KB.
const BUDGET_GZIPPED = 2048;

for (const file of FILES) {
  test(`dist/${file} is the build of src/${file} (run \`npm run build\`)`, async () => {
    assert.equal(readFileSync(fileURLToPath(new URL('../dist/' + file, import.meta.url)), 'utf8'), await build(file));
  });
}

test(`dist/tally.js is at most ${BUDGET_GZIPPED} bytes gzipped`, () => {
  const code = readFileSync(DIST);
  const gzipped = gzipSync(code, { level: 9 }).length;
  console.log(`tally.js: ${code.length} bytes minified, ${gzipped} bytes gzipped (budget ${BUDGET_GZIPPED})`);
  assert.ok(gzipped <= BUDGET_GZIPPED, `${gzipped} bytes gzipped is over the ${BUDGET_GZIPPED}-byte budget`);
});
