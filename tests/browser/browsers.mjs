// Headless Chromium and headless Firefox ESR behind one driver, puppeteer-core (CDP for
// Chromium, WebDriver BiDi for Firefox), each in a fresh profile, reaching the test names
// `site.test` and `stats.example` on loopback and nothing else.
//
// Firefox is started here, not by puppeteer's launcher: that launcher writes its own user.js,
// which turns Firefox's cookie protection off (`browser.contentblocking.features.standard`
// with `cookieBehavior0`). The profile below sets only what the tests need; every privacy
// setting keeps the value Firefox ESR ships (Total Cookie Protection,
// `network.cookie.cookieBehavior` 5), and `assertShippedPrivacy` checks the profile for it.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import puppeteer from 'puppeteer-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const FIREFOX = process.env.FIREFOX || '/usr/bin/firefox-esr';

// Chromium in headless mode says "HeadlessChrome", which tally's bot step drops; the matrix is
// about opt-outs, so Chromium presents its regular user agent. Firefox headless sends its own,
// which is already the regular one.
const CHROMIUM_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/**
 * A proxy on loopback that refuses everything: both browsers send every request for a host
 * other than the test names to it (their own background requests included), and it records the
 * host. The run fails when `seen` is not empty.
 */
export async function startGuard() {
  const seen = [];
  const server = createServer((req, res) => {
    seen.push(req.url); // an absolute URL, as a browser asks a proxy for plain http
    res.writeHead(403).end();
  });
  server.on('connect', (req, socket) => {
    seen.push(`CONNECT ${req.url}`); // host:port of an https or websocket tunnel
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    seen,
    stop: () =>
      new Promise((r) => {
        server.close(r);
        server.closeAllConnections();
      }),
  };
}

/**
 * Firefox preferences the tests need, and nothing that touches privacy. `hosts` resolve to
 * loopback (`network.dns.localDomains`); every other host goes to the guard proxy; Firefox's
 * own services that would call out (updates, telemetry, remote settings, captive portal and
 * connectivity checks, Safe Browsing lists, DNS over HTTPS, prefetching) are off.
 */
function firefoxPrefs({ hosts, guard, dnt, gpc }) {
  const prefs = {
    'network.dns.localDomains': hosts.join(','),
    'network.proxy.type': 1,
    'network.proxy.http': '127.0.0.1',
    'network.proxy.http_port': guard.port,
    'network.proxy.ssl': '127.0.0.1',
    'network.proxy.ssl_port': guard.port,
    'network.proxy.share_proxy_settings': true,
    'network.proxy.no_proxies_on': [...hosts, 'localhost', '127.0.0.1'].join(','),
    'network.trr.mode': 5,
    'network.dns.disablePrefetch': true,
    'network.predictor.enabled': false,
    'network.prefetch-next': false,
    'network.http.speculative-parallel-limit': 0,
    'network.captive-portal-service.enabled': false,
    'network.connectivity-service.enabled': false,
    'app.update.disabledForTesting': true,
    'app.update.auto': false,
    'app.normandy.enabled': false,
    'app.normandy.api_url': '',
    'app.shield.optoutstudies.enabled': false,
    'datareporting.policy.dataSubmissionEnabled': false,
    'datareporting.healthreport.uploadEnabled': false,
    'toolkit.telemetry.enabled': false,
    'toolkit.telemetry.unified': false,
    'toolkit.telemetry.server': '',
    // Honoured on a release build only with MOZ_DISABLE_NONLOCAL_CONNECTIONS (set below);
    // exactly this value makes remote settings skip all remote activity.
    'services.settings.server': 'data:,#remote-settings-dummy/v1',
    // The Remote Agent's own "recommended" prefs include turning tracking protection off in
    // private windows, which flips Firefox's content-blocking category to "custom"; what
    // they do for the network is set above instead.
    'remote.prefs.recommended': false,
    'browser.safebrowsing.malware.enabled': false,
    'browser.safebrowsing.phishing.enabled': false,
    'browser.safebrowsing.downloads.enabled': false,
    'browser.safebrowsing.blockedURIs.enabled': false,
    'browser.safebrowsing.provider.mozilla.updateURL': '',
    'browser.safebrowsing.provider.google4.updateURL': '',
    'browser.region.network.url': '',
    'browser.region.update.enabled': false,
    'browser.search.update': false,
    'browser.newtabpage.enabled': false,
    'browser.startup.page': 0,
    'browser.startup.homepage': 'about:blank',
    'browser.startup.homepage_override.mstone': 'ignore',
    'browser.shell.checkDefaultBrowser': false,
    'browser.aboutwelcome.enabled': false,
    'extensions.update.enabled': false,
    'extensions.getAddons.cache.enabled': false,
    'extensions.systemAddon.update.enabled': false,
    'media.gmp-manager.updateEnabled': false,
    'geo.provider.network.url': '',
    'network.sntp.pools': '',
    'security.OCSP.enabled': 0,
    'security.remote_settings.crlite_filters.enabled': false,
    'security.certerrors.mitm.priming.enabled': false,
    'browser.ml.enable': false,
    'signon.rememberSignons': false,
    // From the Remote Agent's recommended prefs (switched off above as a whole): what else
    // would call out (push, Glean pings, new-tab feeds and ads, suggestions, backups) and what
    // automation needs (focus, input timing).
    'dom.push.connection.enabled': false,
    'telemetry.fog.test.localhost_port': -1,
    'datareporting.usage.uploadEnabled': false,
    'browser.newtabpage.activity-stream.testing.shouldInitializeFeeds': false,
    'browser.newtabpage.activity-stream.showSponsoredTopSites': false,
    'browser.newtabpage.activity-stream.feeds.system.topstories': false,
    'browser.topsites.contile.enabled': false,
    'browser.discovery.enabled': false,
    'browser.urlbar.suggest.searches': false,
    'browser.urlbar.merino.endpointURL': '',
    'browser.urlbar.merino.ohttpConfigURL': '',
    'browser.urlbar.merino.ohttpRelayURL': '',
    'browser.backup.enabled': false,
    'browser.translations.enable': false,
    'security.remote_settings.intermediates.enabled': false,
    'identity.fxaccounts.enabled': false,
    'termsofuse.bypassNotification': true,
    'focusmanager.testmode': true,
    'dom.input_events.security.minNumTicks': 0,
    'dom.input_events.security.minTimeElapsedInMS': 0,
    // WebDriver BiDi in this Firefox cannot dispatch a mouse event into an out-of-process
    // (cross-site) frame (bug 1773393; puppeteer's own launcher sets the same): web content
    // shares one content process. Site isolation is a defence against memory side channels;
    // cookies and storage stay partitioned exactly as shipped.
    'fission.webContentIsolationStrategy': 0,
    'browser.sessionstore.resume_from_crash': false,
    'browser.tabs.warnOnClose': false,
    'browser.warnOnQuit': false,
  };
  // The visitor's own choices, as set in Firefox's settings.
  if (dnt) prefs['privacy.donottrackheader.enabled'] = true;
  if (gpc) prefs['privacy.globalprivacycontrol.enabled'] = true;
  return prefs;
}

// Privacy settings the profile must leave at Firefox's shipped values.
const SHIPPED_PRIVACY = [
  'network.cookie.cookieBehavior',
  'network.cookie.cookieBehavior.pbmode',
  'browser.contentblocking.category',
  'browser.contentblocking.features.standard',
  'privacy.partition.network_state',
  'privacy.trackingprotection.enabled',
  'network.cookie.sameSite.laxByDefault',
  'privacy.firstparty.isolate',
];

const userJs = (prefs) =>
  Object.entries(prefs)
    .map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`)
    .join('\n') + '\n';

/**
 * Headless Firefox ESR in a fresh profile: the test CA trusted in the profile's own NSS
 * database (`certutil`, from libnss3-tools), the prefs above, WebDriver BiDi on a free
 * loopback port. Returns the puppeteer Browser with `profile`, and `close()` removes it.
 */
async function launchFirefox({ ca, hosts, guard, dnt, gpc }) {
  const profile = mkdtempSync(join(tmpdir(), 'tally-ff-'));
  // An NSS database for this profile only, trusting this run's CA for servers: the pages stay
  // real secure contexts, nothing is trusted outside this directory.
  writeFileSync(join(profile, 'test-ca.pem'), ca);
  execFileSync('certutil', ['-N', '-d', `sql:${profile}`, '--empty-password'], { stdio: 'pipe' });
  execFileSync('certutil', ['-A', '-d', `sql:${profile}`, '-n', 'tally browser test CA', '-t', 'C,,', '-i', join(profile, 'test-ca.pem')], { stdio: 'pipe' });
  const prefs = userJs(firefoxPrefs({ hosts, guard, dnt, gpc }));
  writeFileSync(join(profile, 'user.js'), prefs);
  const child = spawn(
    FIREFOX,
    ['--headless', '--no-remote', '--profile', profile, '--remote-debugging-port=0', '--width=1280', '--height=720', 'about:blank'],
    { stdio: ['ignore', 'pipe', 'pipe'], env: {
        ...process.env,
        MOZ_CRASHREPORTER_DISABLE: '1',
        MOZ_DISABLE_AUTO_SAFE_MODE: '1',
        // Firefox itself refuses any connection to a non-loopback address (the guard proxy is
        // on loopback, so what would have gone out is still recorded there).
        MOZ_DISABLE_NONLOCAL_CONNECTIONS: '1',
      },
    },
  );
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  const endpoint = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Firefox did not start:\n${log}`)), 60_000);
    child.on('exit', (code) => reject(new Error(`Firefox exited (${code}):\n${log}`)));
    createInterface({ input: child.stderr }).on('line', (line) => {
      log += line + '\n';
      const m = line.match(/^WebDriver BiDi listening on (ws:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  const browser = await puppeteer.connect({
    browserWSEndpoint: `${endpoint}/session`,
    protocol: 'webDriverBiDi',
    defaultViewport: { width: 1280, height: 720 },
  });
  return {
    browser,
    profile,
    name: 'firefox',
    log: () => log,
    async close() {
      await browser.close().catch(() => {});
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(kill);
      }
      const saved = existsSync(join(profile, 'prefs.js')) ? readFileSync(join(profile, 'prefs.js'), 'utf8') : '';
      rmSync(profile, { recursive: true, force: true });
      assertShippedPrivacy({ userJs: prefs, prefsJs: saved });
    },
  };
}

/**
 * The privacy settings Firefox ran with were its shipped ones: the profile's user.js sets none
 * of `SHIPPED_PRIVACY`, and the prefs.js Firefox saved at exit changed none of them, except
 * that it records the content-blocking category it derived, which must be "standard".
 */
export function assertShippedPrivacy({ userJs, prefsJs }) {
  for (const pref of SHIPPED_PRIVACY) {
    if (userJs.includes(`"${pref}"`)) throw new Error(`user.js sets ${pref}: Firefox must keep its shipped privacy settings`);
    for (const line of prefsJs.split('\n').filter((l) => l.includes(`"${pref}"`))) {
      if (line !== 'user_pref("browser.contentblocking.category", "standard");') {
        throw new Error(`Firefox ran with ${line.trim()}: not its shipped privacy settings`);
      }
    }
  }
}

/**
 * Headless Chromium in a fresh user-data directory with its own default settings, host
 * mapping for `hosts`, this run's leaf certificate trusted by its public key only, every other
 * host sent to the guard proxy. DNT is Chromium's setting (`enable_do_not_track`); GPC is its
 * `GlobalPrivacyControl` feature with `GlobalPrivacyControlForce` (this version has no setting
 * for it; the feature alone neither sends `Sec-GPC` nor sets `navigator.globalPrivacyControl`).
 */
async function launchChromium({ spki, hosts, guard, dnt, gpc }) {
  const profile = mkdtempSync(join(tmpdir(), 'tally-cr-'));
  if (dnt) {
    mkdirSync(join(profile, 'Default'));
    writeFileSync(join(profile, 'Default', 'Preferences'), JSON.stringify({ enable_do_not_track: true }));
  }
  const browser = await puppeteer.launch({
    browser: 'chrome',
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    defaultViewport: { width: 1280, height: 720 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-component-update',
      '--disable-extensions',
      '--disable-features=NetworkTimeServiceQuerying',
      '--disable-domain-reliability',
      '--component-updater=url-source=http://127.0.0.1:9/',
      '--gaia-url=http://127.0.0.1:9/',
      `--user-agent=${CHROMIUM_UA}`,
      `--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`,
      `--ignore-certificate-errors-spki-list=${spki}`,
      `--proxy-server=http://127.0.0.1:${guard.port}`,
      `--proxy-bypass-list=${[...hosts, '127.0.0.1', 'localhost'].join(';')}`,
      ...(gpc ? ['--enable-features=GlobalPrivacyControl,GlobalPrivacyControlForce'] : []),
    ],
  });
  return {
    browser,
    profile,
    name: 'chromium',
    log: () => '',
    async close() {
      await browser.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * `kind` ('chromium' or 'firefox') in a fresh profile. `page()` opens a tab whose requests are
 * recorded in `requests` (URL, method, body) and, when off `hosts`, in `offsite`.
 */
export async function launch(kind, opts) {
  const b = kind === 'firefox' ? await launchFirefox(opts) : await launchChromium(opts);
  b.requests = [];
  b.offsite = [];
  b.page = async () => {
    const p = await b.browser.newPage();
    p.setDefaultTimeout(10_000);
    p.on('request', (r) => {
      const url = r.url();
      if (!/^https?:/.test(url)) return;
      // Over BiDi, puppeteer has no request bodies (postData() throws UnsupportedOperation);
      // the collector's proxy records them for both browsers.
      let body = null;
      try {
        body = r.postData() ?? null;
      } catch {}
      b.requests.push({ url, method: r.method(), body });
      if (!opts.hosts.includes(new URL(url).hostname)) b.offsite.push(url);
    });
    return p;
  };
  return b;
}
