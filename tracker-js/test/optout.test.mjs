// The opt-out widget (src/optout.js, and its build), run in a hand-made DOM just large enough for
// it: elements with children, attributes, classes and click listeners, a cookie jar and
// localStorage. The collector replaces TALLY_OPTOUT with the site's configuration; the tests do
// the same with CONFIG.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cookieJar, fakeStorage } from './helpers.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const FILES = {
  src: readFileSync(root + 'src/optout.js', 'utf8'),
  dist: readFileSync(root + 'dist/optout.js', 'utf8'),
};

const CONFIG = {
  lang: 'en',
  cookie: 'tally_ignore',
  cookie_domains: [],
  title: 'Web analytics on <b>Example</b>',
  intro: 'Example counts its visitors.',
  recorded_heading: 'What is recorded',
  recorded: ['Your IP address, shortened', 'The pages you visit'],
  not_recorded: 'Not recorded: your name.',
  kept: 'Where it is kept',
  stored_where: 'On the operator’s server.',
  retention: 'Deleted after 7 days.',
  choice: 'Your choice',
  signals: 'DNT and GPC are honoured.',
  storage: 'A cookie named tally_ignore.',
  status_in: 'Your visits are currently counted, anonymously.',
  status_out: 'You have opted out: your visits are not recorded.',
  status_signal: 'Your browser asks websites not to track you.',
  button_out: 'Opt out: do not record my visits',
  button_in: 'Opt back in: count my visits again',
  saved: 'Your choice has been saved.',
  not_saved: 'Your browser did not store your choice.',
};

class Element {
  constructor(tag) {
    this.tagName = tag.toUpperCase();
    this.children = [];
    this.attributes = {};
    this.listeners = {};
    this.className = '';
    this.textContent = '';
    this.lang = '';
    this.classList = { add: (c) => (this.className = (this.className + ' ' + c).trim()) };
  }
  appendChild(child) {
    this.children.push(child);
    return child;
  }
  setAttribute(k, v) {
    // The widget must run under a CSP without 'unsafe-inline' styles.
    if (k === 'style') throw new Error('inline style attribute');
    this.attributes[k] = String(v);
  }
  getAttribute(k) {
    return k in this.attributes ? this.attributes[k] : null;
  }
  hasAttribute(k) {
    return k in this.attributes;
  }
  addEventListener(type, f) {
    (this.listeners[type] ||= []).push(f);
  }
  click() {
    for (const f of this.listeners.click || []) f({});
  }
  // Data must never be parsed as HTML.
  set innerHTML(v) {
    throw new Error('innerHTML used');
  }
  *walk() {
    yield this;
    for (const c of this.children) yield* c.walk();
  }
}

/**
 * A page with the container (`<div id="tally-optout">`, or `data-tally-optout` with
 * `byAttribute`) and the widget loaded into it. `cookies: false` is a browser that refuses
 * every cookie, `storage: 'blocked'` one whose localStorage throws.
 */
function page({
  file = 'src',
  href = 'https://site.example/privacy',
  cookies = {},
  storage = {},
  nav = {},
  loading = false,
  byAttribute = false,
  config = CONFIG,
} = {}) {
  const container = new Element('div');
  if (byAttribute) container.setAttribute('data-tally-optout', '');
  else container.id = 'tally-optout';
  const jar = cookieJar();
  for (const [k, v] of Object.entries(cookies || {})) jar.jar.set(k, v);
  const docListeners = {};
  const document = {
    readyState: loading ? 'loading' : 'complete',
    createElement: (tag) => new Element(tag),
    getElementById: (id) => [...container.walk()].find((e) => e.id === id) ?? null,
    querySelector: (sel) => (sel === '[data-tally-optout]' && container.hasAttribute('data-tally-optout') ? container : null),
    addEventListener: (type, f) => (docListeners[type] ||= []).push(f),
  };
  Object.defineProperty(document, 'cookie', {
    get: jar.get,
    set: cookies === false ? (s) => jar.writes.push(s) : jar.set,
  });
  const localStorage = storage === 'blocked' ? fakeStorage({}, { throws: true }) : fakeStorage(storage);
  const url = new URL(href);
  const window = { document, navigator: { ...nav }, location: { protocol: url.protocol, hostname: url.hostname }, localStorage, Date };
  window.window = window;
  const ctx = vm.createContext(window);
  // The argument of the call at the end (the source also names it in a comment).
  const code = FILES[file].replace(/TALLY_OPTOUT\);\s*$/, JSON.stringify(config) + ');\n');
  const run = () => vm.runInContext(code, ctx, { filename: file + '/optout.js' });
  run();
  const byId = (id) => [...container.walk()].find((e) => e.id === id);
  return {
    container,
    jar,
    localStorage,
    run,
    ready: () => (docListeners.DOMContentLoaded || []).forEach((f) => f()),
    status: () => byId('tally-optout-status'),
    button: () => byId('tally-optout-button'),
    result: () => byId('tally-optout-result'),
    texts: () => [...container.walk()].map((e) => e.textContent).filter(Boolean),
  };
}

for (const file of ['src', 'dist']) {
  describe(`${file}: opt-out widget`, () => {
    test('renders the texts as text, a status line and one button', () => {
      const p = page({ file });
      assert.equal(p.container.className, 'tally-optout');
      assert.equal(p.container.lang, 'en');
      const texts = p.texts();
      for (const t of [CONFIG.title, CONFIG.intro, ...CONFIG.recorded, CONFIG.retention, CONFIG.storage]) {
        assert.ok(texts.includes(t), `missing ${t}`);
      }
      assert.equal(p.status().getAttribute('role'), 'status');
      assert.equal(p.status().textContent, CONFIG.status_in);
      assert.equal(p.button().tagName, 'BUTTON');
      assert.equal(p.button().type, 'button');
      assert.equal(p.button().textContent, CONFIG.button_out);
      assert.equal(p.result().textContent, '');
      assert.equal(p.container.getAttribute('data-tally-state'), 'in');
      assert.deepEqual(p.jar.writes, [], 'nothing is written before the button is pressed');
    });

    test('opting out writes the cookie, localStorage and mtm_consent_removed, reads them back, says saved', () => {
      const p = page({ file });
      p.button().click();
      const [own, matomo] = p.jar.writes;
      assert.equal(own, 'tally_ignore=1;Path=/;Max-Age=63072000;SameSite=Lax;Secure');
      assert.match(matomo, /^mtm_consent_removed=\d+;Path=\/;Max-Age=63072000;SameSite=Lax;Secure$/);
      assert.equal(p.localStorage.items.get('tally_ignore'), '1');
      assert.equal(p.status().textContent, CONFIG.status_out);
      assert.equal(p.button().textContent, CONFIG.button_in);
      assert.equal(p.result().textContent, CONFIG.saved);
      assert.equal(p.container.getAttribute('data-tally-state'), 'out');
    });

    test('opting back in removes all three, also a Matomo cookie of a parent domain', () => {
      const p = page({ file, href: 'https://www.site.example/privacy', cookies: { tally_ignore: '1', mtm_consent_removed: '1700000000000' }, storage: { tally_ignore: '1' } });
      assert.equal(p.status().textContent, CONFIG.status_out);
      p.button().click();
      assert.equal(p.jar.get(), '');
      assert.equal(p.localStorage.items.has('tally_ignore'), false);
      for (const domain of ['', ';Domain=www.site.example', ';Domain=site.example']) {
        assert.ok(p.jar.writes.includes(`mtm_consent_removed=;Path=/;Max-Age=0;SameSite=Lax;Secure${domain}`), domain);
      }
      assert.equal(p.status().textContent, CONFIG.status_in);
      assert.equal(p.result().textContent, CONFIG.saved);
    });

    test("an existing mtm_consent_removed (Matomo's opt-out) shows as opted out and is kept when opting out", () => {
      const p = page({ file, cookies: { mtm_consent_removed: '1700000000000' } });
      assert.equal(p.status().textContent, CONFIG.status_out);
      assert.equal(p.button().textContent, CONFIG.button_in);
    });

    test('a browser that keeps nothing: "not saved", and the state shown is the real one', () => {
      const p = page({ file, cookies: false, storage: 'blocked' });
      p.button().click();
      assert.equal(p.result().textContent, CONFIG.not_saved);
      assert.equal(p.result().className, 'tally-optout-result tally-optout-failed');
      assert.equal(p.status().textContent, CONFIG.status_in);
      assert.equal(p.container.getAttribute('data-tally-state'), 'in');
    });

    test('cookies refused but localStorage kept: saved (tally.js reads either)', () => {
      const p = page({ file, cookies: false });
      p.button().click();
      assert.equal(p.result().textContent, CONFIG.saved);
      assert.equal(p.status().textContent, CONFIG.status_out);
    });

    test('an opt-in the browser does not carry out is not reported as saved', () => {
      // The cookie cannot be deleted (a jar that ignores writes); the widget says so.
      const p = page({ file, cookies: false, storage: {} });
      p.jar.jar.set('tally_ignore', '1');
      p.run(); // no second widget: it renders once
      assert.equal(p.container.children.filter((c) => c.id === 'tally-optout-button').length, 1);
      const q = page({ file, cookies: false });
      q.jar.jar.set('tally_ignore', '1');
      q.button().click();
      assert.equal(q.result().textContent, CONFIG.not_saved);
      assert.equal(q.status().textContent, CONFIG.status_out);
    });

    test('a *.example site gets its cookie for the whole domain', () => {
      const p = page({ file, href: 'https://www.site.example/privacy', config: { ...CONFIG, cookie_domains: ['other.example', 'site.example', 'www.site.example.org'] } });
      p.button().click();
      assert.equal(p.jar.writes[0], 'tally_ignore=1;Path=/;Max-Age=63072000;SameSite=Lax;Secure;Domain=site.example');
      p.button().click();
      assert.ok(p.jar.writes.includes('tally_ignore=;Path=/;Max-Age=0;SameSite=Lax;Secure;Domain=site.example'));
      assert.equal(p.result().textContent, CONFIG.saved);
      // A host outside the configured domains: host-only.
      const q = page({ file, href: 'https://elsewhere.example/privacy', config: { ...CONFIG, cookie_domains: ['site.example'] } });
      q.button().click();
      assert.equal(q.jar.writes[0], 'tally_ignore=1;Path=/;Max-Age=63072000;SameSite=Lax;Secure');
    });

    test('plain http: no Secure attribute', () => {
      const p = page({ file, href: 'http://site.example/privacy' });
      p.button().click();
      assert.equal(p.jar.writes[0], 'tally_ignore=1;Path=/;Max-Age=63072000;SameSite=Lax');
    });

    test('script before its container: renders on DOMContentLoaded; data-tally-optout works', () => {
      const p = page({ file, loading: true, byAttribute: true });
      assert.equal(p.container.children.length, 0);
      p.ready();
      assert.equal(p.status().textContent, CONFIG.status_in);
      assert.equal(p.container.className, 'tally-optout');
    });

    test('Do Not Track or GPC is reported; the button still records a choice', () => {
      const p = page({ file, nav: { globalPrivacyControl: true } });
      assert.equal(p.status().textContent, CONFIG.status_signal);
      assert.equal(p.container.getAttribute('data-tally-state'), 'out');
      const q = page({ file, nav: { doNotTrack: '1' } });
      assert.equal(q.status().textContent, CONFIG.status_signal);
    });

    test('another opt-out name from the configuration is used for the cookie and localStorage', () => {
      const p = page({ file, config: { ...CONFIG, cookie: 'no_stats' } });
      p.button().click();
      assert.ok(p.jar.writes[0].startsWith('no_stats=1;'));
      assert.equal(p.localStorage.items.get('no_stats'), '1');
    });
  });
}
