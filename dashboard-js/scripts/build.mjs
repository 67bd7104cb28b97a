// Builds dist/dashboard.js and dist/dashboard.css from src/ (uPlot and its CSS bundled in),
// minified. `build()` returns the files without writing them, so the test can compare them
// with what is committed.
import * as esbuild from 'esbuild';
import { writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const DIST = fileURLToPath(new URL('../dist/', import.meta.url));
export const FILES = ['dashboard.js', 'dashboard.css'];

// uPlot is MIT licensed: its notice travels with the bundle.
const NOTICE = '/*! tally dashboard. Includes uPlot 1.6.32, (c) Leon Sorokin, MIT License, https://github.com/leeoniya/uPlot */';
const common = { bundle: true, minify: true, write: false, absWorkingDir: root, logLevel: 'silent', legalComments: 'none', charset: 'utf8' };

/** The built files: {"dashboard.js": text, "dashboard.css": text}. */
export async function build() {
  const js = await esbuild.build({ ...common, entryPoints: ['src/main.js'], format: 'iife', target: ['es2020'], banner: { js: NOTICE }, outfile: 'dist/dashboard.js' });
  const css = await esbuild.build({ ...common, entryPoints: ['src/dashboard.css'], target: ['chrome100', 'firefox100', 'safari15'], banner: { css: NOTICE }, outfile: 'dist/dashboard.css' });
  return { 'dashboard.js': js.outputFiles[0].text, 'dashboard.css': css.outputFiles[0].text };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = await build();
  mkdirSync(DIST, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(DIST + name, text);
    console.log(`dist/${name}: ${Buffer.byteLength(text)} bytes`);
  }
}
