import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { MESSAGES, LANGS, t, pickLang } from '../src/i18n.js';
import { CARDS } from '../src/cards.js';
import { TABS, COMPARISONS } from '../src/state.js';
import { RANGES } from '../src/dates.js';
import { HEADLINE } from '../src/queries.js';

test('English and German have the same keys, none empty, the same placeholders', () => {
  const en = Object.keys(MESSAGES.en).sort();
  assert.deepEqual(Object.keys(MESSAGES.de).sort(), en);
  for (const k of en) {
    for (const lang of LANGS) assert.ok(MESSAGES[lang][k].trim(), `${lang}.${k}`);
    const vars = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(vars(MESSAGES.de[k]), vars(MESSAGES.en[k]), k);
  }
});

test('every key the code uses exists', () => {
  const dir = new URL('../src/', import.meta.url);
  const used = new Set();
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.js'))) {
    for (const m of readFileSync(new URL(f, dir), 'utf8').matchAll(/\bt\(\s*lang\s*,\s*'([a-z_]+)'\s*[,)]/g)) used.add(m[1]);
  }
  for (const c of CARDS) used.add('card_' + c.id);
  for (const x of TABS) used.add('tab_' + x);
  for (const x of RANGES) used.add('range_' + x);
  for (const x of COMPARISONS) used.add('compare_' + x);
  for (const m of [...HEADLINE, ...CARDS.flatMap((c) => c.metrics)]) used.add('m_' + m);
  assert.ok(used.size > 50);
  for (const k of used) assert.ok(k in MESSAGES.en, `missing key ${k}`);
});

test('the note on visitors over several days is said in both languages', () => {
  assert.match(t('en', 'note_visitors_days'), /sum of daily visitors.*cannot recognise a person across days, by design/);
  assert.match(t('de', 'note_visitors_days'), /Summe der täglichen Besucher/);
});

test('placeholders are filled; the language is the stored choice, else the server\'s', () => {
  assert.equal(t('de', 'remove_filter', { filter: 'Browser: Firefox' }), 'Filter Browser: Firefox entfernen');
  assert.equal(t('en', 'no_such_key'), 'no_such_key');
  assert.equal(pickLang('de', 'en'), 'de');
  assert.equal(pickLang(null, 'de'), 'de');
  assert.equal(pickLang('fr', 'xx'), 'en');
});
