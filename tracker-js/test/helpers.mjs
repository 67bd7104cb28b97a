// A hand-made browser, just large enough for tally.js: window, document,
// navigator, screen, location, history, cookies, events, transports.
// Each load() evaluates the tracker in a fresh vm context.
import vm from 'node:vm';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
export const FILES = {
  src: readFileSync(root + 'src/tally.js', 'utf8'),
  dist: readFileSync(root + 'dist/tally.js', 'utf8'),
};

// 2024-03-05 14:07:09 local time, whatever the machine's time zone.
export const NOW = new Date(2024, 2, 5, 14, 7, 9).getTime();
export const TRACKER = 'https://stats.example/matomo.php';

class Target {
  constructor() {
    this.listeners = {};
  }
  addEventListener(type, f, capture) {
    (this.listeners[type] ||= []).push(f);
  }
  fire(type, event = {}) {
    for (const f of this.listeners[type] || []) f(event);
  }
  count(type) {
    return (this.listeners[type] || []).length;
  }
}

// localStorage as far as the tracker and the widget use it. `entries` are
// its initial items; `throws` makes every call fail as a browser that blocks
// storage does (SecurityError).
export function fakeStorage(entries = {}, { throws = false } = {}) {
  const items = new Map(Object.entries(entries));
  const guard = () => {
    if (throws) throw new Error('SecurityError: storage is blocked');
  };
  return {
    items,
    getItem: (k) => (guard(), items.has(k) ? items.get(k) : null),
    setItem: (k, v) => (guard(), items.set(k, String(v)), undefined),
    removeItem: (k) => (guard(), items.delete(k), undefined),
  };
}

// A cookie jar that behaves like document.cookie for our purposes and
// records every string written, to check attributes.
export function cookieJar() {
  const jar = new Map();
  const writes = [];
  return {
    writes,
    jar,
    get() {
      return [...jar].map(([k, v]) => k + '=' + v).join('; ');
    },
    set(s) {
      writes.push(s);
      const [kv, ...attrs] = s.split(';').map((x) => x.trim());
      const i = kv.indexOf('=');
      const k = kv.slice(0, i);
      const maxAge = attrs.find((a) => /^max-age=/i.test(a));
      if (maxAge && +maxAge.split('=')[1] <= 0) jar.delete(k);
      else jar.set(k, kv.slice(i + 1));
    },
  };
}

// An <a> element as the click handler sees it. `inner` gives a child span
// as the event target, to test delegation.
export function anchor(href, { download = false } = {}) {
  const u = new URL(href);
  const a = {
    href: u.href,
    protocol: u.protocol,
    hostname: u.hostname,
    pathname: u.pathname,
    hasAttribute: (n) => n === 'download' && download,
    closest: (sel) => (sel === 'a' ? a : null),
  };
  return a;
}

export function span(parentAnchor) {
  return { closest: (sel) => (sel === 'a' ? parentAnchor : null) };
}

export function load(opts = {}) {
  const {
    file = 'src',
    href = 'https://site.example/page?x=1',
    title = 'Home',
    referrer = 'https://ref.example/from',
    paq,
    nav = {},
    win = {},
    beacon = true,
    fetch: hasFetch = true,
    cookies = {},
    before,
  } = opts;

  const sent = []; // { via, url, body?, init? }
  let url = new URL(href);
  const location = {
    get href() {
      return url.href;
    },
    get hostname() {
      return url.hostname;
    },
    get protocol() {
      return url.protocol;
    },
  };
  const history = {
    pushState(state, unused, u) {
      url = new URL(u, url);
    },
    replaceState(state, unused, u) {
      if (u != null) url = new URL(u, url);
    },
  };
  const jar = cookieJar();
  for (const [k, v] of Object.entries(cookies)) jar.jar.set(k, v);

  const document = new Target();
  Object.assign(document, { title, referrer, hidden: false });
  Object.defineProperty(document, 'cookie', { get: jar.get, set: jar.set, configurable: true });

  const navigator = { ...nav };
  if (beacon === true) {
    navigator.sendBeacon = (u, body) => {
      sent.push({ via: 'beacon', url: u, body });
      return true;
    };
  } else if (typeof beacon === 'function') {
    navigator.sendBeacon = beacon;
  }

  class FakeDate extends Date {
    constructor(...a) {
      if (a.length) super(...a);
      else super(FakeDate.now());
    }
    static now() {
      return window.__now;
    }
  }

  const window = new Target();
  Object.assign(window, {
    document,
    navigator,
    location,
    history,
    screen: { width: 1280, height: 720 },
    Date: FakeDate,
    __now: NOW,
    // Looked up at call time so node:test mock timers apply.
    setTimeout: (...a) => globalThis.setTimeout(...a),
    Image: class {
      set src(v) {
        sent.push({ via: 'image', url: v });
      }
    },
    ...win,
  });
  if (hasFetch === true) {
    window.fetch = (u, init) => {
      sent.push({ via: 'fetch', url: u, init, body: init.body });
      return Promise.resolve({});
    };
  } else if (typeof hasFetch === 'function') {
    window.fetch = hasFetch;
  }
  window.window = window;
  if (paq) window._paq = paq;
  const ctx = vm.createContext(window);
  if (before) before(window);
  vm.runInContext(FILES[file], ctx, { filename: file + '/tally.js' });

  return {
    window,
    document,
    navigator,
    history,
    sent,
    jar,
    // Parsed bodies of everything sent, as plain objects.
    hits: () => sent.map((s) => params(s.body ?? s.url.split('?')[1])),
    push: (...c) => window._paq.push(...c),
    go(u) {
      url = new URL(u, url);
    },
    // Evaluate the tracker a second time in the same page.
    again: () => vm.runInContext(FILES[file], ctx),
  };
}

export function params(body) {
  return Object.fromEntries(new URLSearchParams(body));
}
