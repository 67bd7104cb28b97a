// Dev harness (not shipped): serves the contract's shell page with a config written here, the
// dashboard built fresh from src/ on every request, and proxies POST /api/v2/query to a real
// `tally serve`, adding `Authorization: Bearer $TALLY_KEY`. The admin endpoints (/admin/keys,
// /admin/links) are kept in memory here, following the contract, until the collector has them.
//
//   TALLY_URL=http://127.0.0.1:8080 TALLY_KEY=tally_... node dev/serve.mjs [port]
//   MODE=share (share mode), SITES='[{"id":1,"name":"Demo site","timezone":"UTC","domains":[]}]',
//   LANG_PICK=de, DEMO=1
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { build } from '../scripts/build.mjs';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8099);
const upstream = process.env.TALLY_URL ?? 'http://127.0.0.1:8080';
const key = process.env.TALLY_KEY ?? '';
const mode = process.env.MODE === 'share' ? 'share' : 'session';
const csrf = 'dev-csrf-' + randomBytes(6).toString('hex');
const shareToken = 'dev-share-token';
const sites = JSON.parse(process.env.SITES ?? '[{"id":1,"name":"Demo site","timezone":"UTC","domains":["localhost"]}]');

export function config() {
  return {
    mode,
    base: '',
    api: '/api/v2/query',
    headers: mode === 'share' ? { 'X-Tally-Share': shareToken } : { 'X-Tally-CSRF': csrf },
    lang: process.env.LANG_PICK === 'de' ? 'de' : 'en',
    user: mode === 'share' ? null : { name: 'ada', admin: true },
    sites: mode === 'share' ? sites.slice(0, 1) : sites,
    logout: mode === 'share' ? null : '/logout',
    csrf: mode === 'share' ? null : csrf,
    admin: mode === 'share' ? null : { keys: '/admin/keys', links: '/admin/links' },
    demo: process.env.DEMO === '1',
  };
}

// As the contract says: <, >, &, U+2028 and U+2029 escaped so the JSON cannot end the script.
function scriptJson(value) {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

function shell(lang) {
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tally</title><link rel="stylesheet" href="/assets/dashboard.css?v=dev"></head>
<body><div id="app"></div>
<script type="application/json" id="tally-config">${scriptJson(config())}</script>
<script src="/assets/dashboard.js?v=dev" defer></script></body></html>`;
}

// The collector's policy: nothing inline, nothing from elsewhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const keys = [];
const links = [];
const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 1 << 20) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function json(res, status, value) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function adminRoute(req, res, url) {
  if (mode === 'share' || req.headers['x-tally-csrf'] !== csrf) return json(res, 403, { error: 'admins only' });
  const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || '{}') : null;
  const m = url.pathname.match(/^\/admin\/(keys|links)(?:\/([^/]+)\/revoke)?$/);
  if (!m) return json(res, 404, { error: 'not found' });
  const [, kind, id] = m;
  const list = kind === 'keys' ? keys : links;
  if (id) {
    const item = list.find((x) => x.id === id);
    if (!item) return json(res, 404, { error: 'not found' });
    item.revoked ??= now();
    if (kind === 'links') item.url = null;
    return json(res, 200, { revoked: true });
  }
  if (req.method === 'GET') return json(res, 200, { [kind]: list });
  if (kind === 'keys') {
    if (!body.name || !Array.isArray(body.sites) || !body.sites.length) return json(res, 400, { error: 'give a name and at least one site' });
    const k = { id: randomBytes(8).toString('hex'), name: body.name, sites: body.sites, created: now(), revoked: null };
    keys.push(k);
    return json(res, 200, { id: k.id, key: `tally_${k.id}_${randomBytes(24).toString('base64url')}` });
  }
  if (!body.name || !sites.some((s) => s.id === body.site)) return json(res, 400, { error: 'give a name and a site' });
  const l = { id: randomBytes(8).toString('hex'), site: body.site, name: body.name, protected: !!body.password, created: now(), revoked: null };
  l.url = `http://127.0.0.1:${port}/share/${randomBytes(16).toString('base64url')}`;
  links.push(l);
  return json(res, 200, { id: l.id, url: l.url });
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://localhost');
    if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': CSP, 'Cache-Control': 'no-store' });
      return res.end(shell(config().lang));
    }
    if (req.method === 'GET' && url.pathname.startsWith('/assets/dashboard.')) {
      const name = url.pathname.slice('/assets/'.length);
      const files = await build();
      if (!(name in files)) return json(res, 404, { error: 'not found' });
      res.writeHead(200, { 'Content-Type': name.endsWith('.js') ? 'text/javascript' : 'text/css', 'Cache-Control': 'no-store' });
      return res.end(files[name]);
    }
    if (req.method === 'POST' && url.pathname === '/api/v2/query') {
      const okHeader = mode === 'share' ? req.headers['x-tally-share'] === shareToken : req.headers['x-tally-csrf'] === csrf;
      if (!okHeader) return json(res, 401, { error: 'missing or wrong X-Tally-CSRF / X-Tally-Share header' });
      const body = await readBody(req);
      const r = await fetch(upstream + url.pathname + url.search, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: req.headers.accept ?? 'application/json', Authorization: `Bearer ${key}` },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      res.writeHead(r.status, { 'Content-Type': r.headers.get('content-type') ?? 'application/json' });
      return res.end(Buffer.from(await r.arrayBuffer()));
    }
    if (url.pathname.startsWith('/admin/')) return adminRoute(req, res, url);
    if (req.method === 'POST' && url.pathname === '/logout') {
      const form = new URLSearchParams(await readBody(req));
      if (form.get('csrf') !== csrf) return json(res, 403, { error: 'bad csrf' });
      res.writeHead(303, { Location: '/' });
      return res.end();
    }
    if (url.pathname === '/demo') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      return res.end('<!doctype html><title>demo</title><p>The demo page lives on the collector.');
    }
    json(res, 404, { error: 'not found' });
  } catch (e) {
    json(res, 502, { error: String(e.message ?? e) });
  }
});

server.listen(port, '127.0.0.1', () => console.log(`dashboard dev harness on http://127.0.0.1:${port}/ (mode ${mode}, API at ${upstream})`));
