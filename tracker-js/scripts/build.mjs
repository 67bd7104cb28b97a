// Builds dist/tally.js from src/tally.js. dist/ is committed: the Rust
// binary embeds it with include_bytes!, so `cargo build` never needs npm.
// test/build.test.mjs calls build() and compares with the committed file.
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

const root = fileURLToPath(new URL('..', import.meta.url));
export const SRC = root + 'src/tally.js';
export const DIST = root + 'dist/tally.js';

// Options only; terser is pinned exactly in package.json so the output is
// byte-for-byte reproducible.
const OPTIONS = {
  ecma: 2020,
  module: false,
  compress: { passes: 3, unsafe: true, unsafe_arrows: true, pure_getters: true },
  mangle: true,
  format: { comments: false },
};

export async function build() {
  const { code } = await minify(await readFile(SRC, 'utf8'), OPTIONS);
  return code + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const code = await build();
  await mkdir(root + 'dist', { recursive: true });
  await writeFile(DIST, code);
  const { gzipSync } = await import('node:zlib');
  console.log(`dist/tally.js: ${Buffer.byteLength(code)} bytes, ${gzipSync(code, { level: 9 }).length} gzipped`);
}
