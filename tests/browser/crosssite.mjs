// Helpers of the cross-site test: a throw-away certificate, the test site and a reverse proxy
// in front of the collector, each on its own loopback port, over https or plain http. The
// browser reaches them by name (site.test, stats.example) through Chromium's host mapping.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A CA and a leaf certificate for `names`, signed by it, made with `openssl` for this run
 * only (valid two days, keys never written outside a temporary directory that is removed).
 * `spki` is the base64 SHA-256 of the leaf's public key, as
 * `--ignore-certificate-errors-spki-list` takes it; `ca` is the CA certificate (PEM), which a
 * Firefox profile made for the run trusts (`browsers.mjs`).
 */
export function makeCertificate(names) {
  const dir = mkdtempSync(join(tmpdir(), 'tally-tls-'));
  const ossl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
      '-subj', '/CN=tally browser test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
    ossl('req', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', `/CN=${names[0]}`);
    writeFileSync(
      join(dir, 'leaf.ext'),
      `basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}
`,
    );
    ossl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '2', '-extfile', 'leaf.ext', '-out', 'leaf.pem');
    const leaf = readFileSync(join(dir, 'leaf.pem'), 'utf8');
    const ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
    const spkiDer = new X509Certificate(leaf).publicKey.export({ type: 'spki', format: 'der' });
    return {
      key: readFileSync(join(dir, 'leaf.key'), 'utf8'),
      cert: leaf + ca, // the chain as a server sends it
      spki: createHash('sha256').update(spkiDer).digest('base64'),
      ca,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function listen(scheme, tls, handler) {
  const server = scheme === 'https' ? createHttpsServer({ key: tls.key, cert: tls.cert }, handler) : createHttpServer(handler);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port })),
  );
}

const html = (title, head, body) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${head}</head><body>${body}</body></html>`;

/**
 * The site `scheme://host:port`: `/page.html` carries the Matomo snippet (a page view, and a
 * button `#event` that sends an event), `/policy.html` frames the collector's opt-out page.
 * `site.collector` (the collector's origin as the browser sees it) is set before use.
 */
export async function startCrossSite(scheme, host, tls) {
  const site = {};
  const snippet = () => `<script>
  var _paq = window._paq = window._paq || [];
  _paq.push(['trackPageView']);
  (function() {
    var u="${site.collector}/";
    _paq.push(['setTrackerUrl', u+'matomo.php']);
    _paq.push(['setSiteId', '1']);
    var d=document, g=d.createElement('script'), s=d.getElementsByTagName('script')[0];
    g.async=true; g.src=u+'tally.js'; s.parentNode.insertBefore(g,s);
  })();
</script>`;
  const pages = {
    '/page.html': () =>
      html('Cross-site page', snippet(), `<button id="event" onclick="_paq.push(['trackEvent', 'Video', 'Play', 'intro'])">play</button>`),
    '/policy.html': () =>
      html(
        'Privacy policy',
        '',
        `<h1>Privacy policy</h1><iframe id="optout" src="${site.collector}/optout?idsite=1&lang=en" width="100%" height="700"></iframe>`,
      ),
  };
  // The privacy policy with the collector's opt-out widget instead of the frame, under a
  // strict policy: no inline script or style, scripts only from the collector.
  pages['/widget.html'] = () =>
    html(
      'Privacy policy (widget)',
      '',
      `<h1>Privacy policy</h1><div id="tally-optout"></div><script src="${site.collector}/optout.js?idsite=1&amp;lang=en" async></script>`,
    );
  const csp = { '/widget.html': () => `default-src 'none'; script-src ${site.collector}` };
  const { server, port } = await listen(scheme, tls, (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    const make = pages[path];
    const headers = { 'Content-Type': 'text/html; charset=utf-8' };
    if (csp[path]) headers['Content-Security-Policy'] = csp[path]();
    if (make) res.writeHead(200, headers).end(make());
    else res.writeHead(404).end();
  });
  Object.assign(site, {
    port,
    url: `${scheme}://${host}:${port}`,
    stop: () => new Promise((r) => {
      server.close(r);
      server.closeAllConnections(); // the browser's idle keep-alive connections
    }),
  });
  return site;
}

/**
 * The collector as the browser reaches it, `scheme://host:port`: a reverse proxy to tally's
 * http port on loopback (`proxy.target`, set once tally runs) that says where the request came
 * from and over what (`X-Forwarded-For`, `X-Forwarded-Proto`), as a TLS-terminating proxy in
 * production does. Every request it passes is recorded in `proxy.seen`: method, path, the
 * `Cookie` header the browser sent, the body of tracking requests, tally's status.
 */
export async function startCollectorProxy(scheme, host, tls) {
  const proxy = { seen: [] };
  const { server, port } = await listen(scheme, tls, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const entry = { method: req.method, path: req.url, cookie: req.headers.cookie ?? null, origin: req.headers.origin, fetchSite: req.headers['sec-fetch-site'], dnt: req.headers.dnt, gpc: req.headers['sec-gpc'], ua: req.headers['user-agent'], body: body.toString('utf8') };
      proxy.seen.push(entry);
      const headers = { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress, 'x-forwarded-proto': scheme };
      const up = httpRequest(`${proxy.target}${req.url}`, { method: req.method, headers }, (upRes) => {
        entry.status = upRes.statusCode;
        res.writeHead(upRes.statusCode, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', (e) => {
        entry.status = 502;
        res.writeHead(502).end(String(e));
      });
      up.end(body);
    });
  });
  Object.assign(proxy, {
    port,
    url: `${scheme}://${host}:${port}`,
    stop: () => new Promise((r) => {
      server.close(r);
      server.closeAllConnections(); // the browser's idle keep-alive connections
    }),
  });
  return proxy;
}
