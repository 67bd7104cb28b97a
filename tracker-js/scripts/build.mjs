// Builds dist/tally.js from src/tally.js and dist/optout.js (the opt-out
// widget) from src/optout.js. dist/ is committed: the Rust binary embeds
// both, so `cargo build` never needs npm. test/build.test.mjs calls build()
// and compares with the committed files.
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

const root = fileURLToPath(new URL('..', import.meta.url));
export const SRC = root + 'src/tally.js';
export const DIST = root + 'dist/tally.js';
/** Every built file: source and output, relative to tracker-js/. */
export const FILES = ['tally.js', 'optout.js'];

// Options only; terser is pinned exactly in package.json so the output is
// byte-for-byte reproducible.
const OPTIONS = {
  ecma: 2020,
  module: false,
  compress: { passes: 3, unsafe: true, unsafe_arrows: true, pure_getters: true },
  mangle: true,
  format: { comments: false },
};

export async function build(file = 'tally.js') {
  const { code } = await minify(await readFile(root + 'src/' + file, 'utf8'), OPTIONS);
  return code + '\n';
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await mkdir(root + 'dist', { recursive: true });
  const { gzipSync } = await import('node:zlib');
  for (const file of FILES) {
    const code = await build(file);
    await writeFile(root + 'dist/' + file, code);
    console.log(`dist/${file}: ${Buffer.byteLength(code)} bytes, ${gzipSync(code, { level: 9 }).length} gzipped`);
  }
}
