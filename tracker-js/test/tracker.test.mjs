// Behaviour of the tracker, run against the readable source and against the
// shipped minified build (the minifier runs with unsafe options, so the
// build is tested, not assumed).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { load, anchor, span, params, fakeStorage, NOW, TRACKER } from './helpers.mjs';

const CONFIG = [
  ['setTrackerUrl', TRACKER],
  ['setSiteId', '1'],
];
const PV = /^[0-9a-z]{6}$/;
const d = new Date(NOW);
const TIME = { h: String(d.getHours()), m: String(d.getMinutes()), s: String(d.getSeconds()) };

// Everything except the random fields, which are checked for shape.
function strip(hit) {
  const { pv_id, rand, ...rest } = hit;
  assert.match(rand, PV, 'rand');
  if (pv_id !== undefined) assert.match(pv_id, PV, 'pv_id');
  return rest;
}

const BASE = {
  idsite: '1',
  rec: '1',
  apiv: '1',
  url: 'https://site.example/page?x=1',
  urlref: 'https://ref.example/from',
  res: '1280x720',
  ...TIME,
  send_image: '0',
};

for (const file of ['src', 'dist']) {
  const env = (o = {}) => load({ file, ...o });
  const ready = (o = {}) => env({ ...o, paq: [...CONFIG, ...(o.paq || [])] });

  describe(`${file}: request building`, () => {
    test('Matomo snippet: trackPageView queued before the configuration', () => {
      const t = env({ paq: [['trackPageView'], ['enableLinkTracking'], ...CONFIG] });
      assert.equal(t.sent.length, 1);
      assert.equal(t.sent[0].via, 'beacon');
      assert.equal(t.sent[0].url, TRACKER);
      assert.equal(typeof t.sent[0].body, 'string'); // text/plain: no CORS preflight
      const hit = t.hits()[0];
      assert.deepEqual(strip(hit), { ...BASE, action_name: 'Home' });
      assert.deepEqual(Object.keys(hit), [
        'idsite', 'rec', 'apiv', 'action_name', 'url', 'urlref', 'res', 'h', 'm', 's', 'pv_id', 'send_image', 'rand',
      ]);
    });

    test('values are urlencoded', () => {
      const t = ready({ title: 'a&b=c d+é', paq: [['trackPageView']] });
      assert.match(t.sent[0].body, /action_name=a%26b%3Dc%20d%2B%C3%A9&/);
      assert.equal(t.hits()[0].action_name, 'a&b=c d+é');
    });

    test('trackPageView(customTitle), setDocumentTitle, setCustomUrl, setReferrerUrl', () => {
      const t = ready({ paq: [['trackPageView', 'Custom']] });
      t.push(['setDocumentTitle', 'Doc title']);
      t.push(['trackPageView']);
      t.push(['setCustomUrl', 'https://site.example/virtual']);
      t.push(['setReferrerUrl', 'https://other.example/']);
      t.push(['trackPageView']);
      const h = t.hits();
      assert.equal(h[0].action_name, 'Custom');
      assert.equal(h[1].action_name, 'Doc title');
      assert.equal(h[1].url, 'https://site.example/page?x=1');
      assert.equal(h[2].url, 'https://site.example/virtual');
      assert.equal(h[2].urlref, 'https://other.example/');
    });

    test('empty referrer is left out', () => {
      const t = ready({ referrer: '', paq: [['trackPageView']] });
      assert.equal('urlref' in t.hits()[0], false);
    });

    test('each page view gets a new pv_id; other hits share the current one', () => {
      const t = ready({ paq: [['trackPageView'], ['trackEvent', 'c', 'a'], ['trackPageView'], ['trackEvent', 'c', 'a']] });
      const [p1, e1, p2, e2] = t.hits();
      assert.match(p1.pv_id, PV);
      assert.equal(e1.pv_id, p1.pv_id);
      assert.notEqual(p2.pv_id, p1.pv_id);
      assert.equal(e2.pv_id, p2.pv_id);
    });

    test('trackEvent with all arguments, value 0, and without optional ones', () => {
      const t = ready({ paq: [['trackEvent', 'Video', 'Play', 'Intro', 4.5], ['trackEvent', 'Video', 'Pause', 'Intro', 0], ['trackEvent', 'Nav', 'Open']] });
      const h = t.hits().map(strip);
      assert.deepEqual(h[0], { ...BASE, e_c: 'Video', e_a: 'Play', e_n: 'Intro', e_v: '4.5' });
      assert.deepEqual(h[1], { ...BASE, e_c: 'Video', e_a: 'Pause', e_n: 'Intro', e_v: '0' });
      assert.deepEqual(h[2], { ...BASE, e_c: 'Nav', e_a: 'Open' });
    });

    test('trackEvent without category or action sends nothing', () => {
      const t = ready({ paq: [['trackEvent', 'Video'], ['trackEvent', '', 'Play'], ['trackEvent']] });
      assert.equal(t.sent.length, 0);
    });

    test('trackSiteSearch, including Matomo-style false arguments', () => {
      const t = ready({ paq: [['trackSiteSearch', 'red shoes', 'Shop', 12], ['trackSiteSearch', 'banana', false, false], ['trackSiteSearch', 'none', '', 0]] });
      const h = t.hits().map(strip);
      assert.deepEqual(h[0], { ...BASE, search: 'red shoes', search_cat: 'Shop', search_count: '12' });
      assert.deepEqual(h[1], { ...BASE, search: 'banana' });
      assert.deepEqual(h[2], { ...BASE, search: 'none', search_count: '0' });
    });

    test('trackLink: link and download types', () => {
      const t = ready({ paq: [['trackLink', 'https://out.example/x', 'link'], ['trackLink', 'https://site.example/a.pdf', 'download']] });
      const h = t.hits().map(strip);
      assert.deepEqual(h[0], { ...BASE, link: 'https://out.example/x' });
      assert.deepEqual(h[1], { ...BASE, download: 'https://site.example/a.pdf' });
    });

    test('no hit without a tracker URL', () => {
      const t = env({ paq: [['setSiteId', 1], ['trackPageView']] });
      assert.equal(t.sent.length, 0);
    });
  });

  describe(`${file}: the _paq queue`, () => {
    test('works when _paq does not exist before load', () => {
      const t = env();
      assert.equal(typeof t.window._paq.push, 'function');
      t.push(...CONFIG, ['trackPageView']);
      assert.equal(t.sent.length, 1);
    });

    test('after load, push executes immediately, on the same array object', () => {
      const q = [...CONFIG];
      const t = env({ paq: q });
      assert.equal(t.window._paq, q);
      q.push(['trackEvent', 'c', 'a']);
      assert.equal(t.sent.length, 1);
      q.push(['trackEvent', 'c', 'b'], ['trackEvent', 'c', 'c']); // several at once, in order
      assert.deepEqual(t.hits().map((h) => h.e_a), ['a', 'b', 'c']);
    });

    test('configuration commands run first, the rest in queue order', () => {
      const t = env({
        paq: [
          ['trackEvent', 'c', '1'],
          ['trackPageView'],
          ['setTrackerUrl', TRACKER],
          ['trackEvent', 'c', '2'],
          ['setSiteId', '7'],
          ['setCustomUrl', 'https://site.example/custom'],
          ['setDocumentTitle', 'T'],
        ],
      });
      const h = t.hits();
      assert.deepEqual(h.map((x) => x.e_a || x.action_name), ['1', 'T', '2']);
      assert.ok(h.every((x) => x.idsite === '7' && x.url === 'https://site.example/custom'));
    });

    test('function commands run with the tracker as this, in order, with arguments', () => {
      const seen = [];
      const t = env({
        paq: [
          [function (a, b) {
            seen.push([this.isUserOptedOut(), a, b]);
            this.trackEvent('fn', 'called');
          }, 'x', 'y'],
          ...CONFIG,
        ],
      });
      assert.deepEqual(seen, [[false, 'x', 'y']]);
      assert.equal(t.hits()[0].e_a, 'called');
      t.push(function () {
        seen.push(this === t.window.Tally);
      });
      assert.deepEqual(seen[1], true);
    });

    test('window.Tally exposes the same commands', () => {
      const t = ready();
      t.window.Tally.trackEvent('direct', 'call');
      assert.equal(t.hits()[0].e_c, 'direct');
      assert.equal(t.window.Tally.isUserOptedOut(), false);
    });

    test('loading the script twice does not run the queue twice', () => {
      const t = ready({ paq: [['trackPageView']] });
      const tally = t.window.Tally;
      t.again();
      assert.equal(t.sent.length, 1);
      assert.equal(t.window.Tally, tally);
      t.push(['trackPageView']);
      assert.equal(t.sent.length, 2);
    });
  });

  describe(`${file}: privacy`, () => {
    for (const [name, nav, win] of [
      ['navigator.doNotTrack', { doNotTrack: '1' }, {}],
      ['window.doNotTrack', {}, { doNotTrack: '1' }],
      ['navigator.msDoNotTrack', { msDoNotTrack: '1' }, {}],
    ]) {
      test(`${name} = "1" blocks everything; setRespectDoNotTrack(false) allows`, () => {
        const t = ready({ nav, win, paq: [['trackPageView'], ['trackEvent', 'c', 'a']] });
        assert.equal(t.sent.length, 0);
        const u = ready({ nav, win, paq: [['setRespectDoNotTrack', false], ['trackPageView']] });
        assert.equal(u.sent.length, 1);
      });
    }

    test('doNotTrack "0" and "unspecified" do not block', () => {
      assert.equal(ready({ nav: { doNotTrack: '0' }, paq: [['trackPageView']] }).sent.length, 1);
      assert.equal(ready({ nav: { doNotTrack: 'unspecified' }, paq: [['trackPageView']] }).sent.length, 1);
    });

    test('Global Privacy Control blocks; setRespectGlobalPrivacyControl(false) allows', () => {
      assert.equal(ready({ nav: { globalPrivacyControl: true }, paq: [['trackPageView']] }).sent.length, 0);
      assert.equal(ready({ nav: { globalPrivacyControl: false }, paq: [['trackPageView']] }).sent.length, 1);
      assert.equal(ready({ nav: { globalPrivacyControl: true }, paq: [['setRespectGlobalPrivacyControl', false], ['trackPageView']] }).sent.length, 1);
    });

    test('optUserOut sets tally_ignore with the right attributes and blocks', () => {
      const t = ready({ paq: [['trackPageView']] });
      assert.equal(t.sent.length, 1);
      t.push(['optUserOut']);
      assert.deepEqual(t.jar.writes, ['tally_ignore=1;Path=/;Max-Age=63072000;SameSite=Lax;Secure']);
      assert.equal(t.window.Tally.isUserOptedOut(), true);
      t.push(['trackPageView'], ['trackEvent', 'c', 'a'], ['trackLink', 'https://x.example/', 'link']);
      assert.equal(t.sent.length, 1);
      t.push(['forgetUserOptOut']);
      assert.equal(t.jar.writes[1], 'tally_ignore=;Path=/;Max-Age=0;SameSite=Lax;Secure');
      assert.equal(t.window.Tally.isUserOptedOut(), false);
      t.push(['trackPageView']);
      assert.equal(t.sent.length, 2);
    });

    test('an opt-out kept in localStorage (by the widget) blocks from the first hit', () => {
      let seen;
      const localStorage = fakeStorage({ tally_ignore: '1' });
      const t = ready({ win: { localStorage }, paq: [['trackPageView'], [function () { seen = this.isUserOptedOut(); }]] });
      t.push(['trackEvent', 'c', 'a']);
      assert.equal(t.sent.length, 0);
      assert.equal(seen, true);
      // Set while the page is open (the widget in the same page), it stops the next hit.
      const later = fakeStorage();
      const u = ready({ win: { localStorage: later }, paq: [['trackPageView']] });
      later.items.set('tally_ignore', '1');
      u.push(['trackPageView']);
      assert.equal(u.sent.length, 1);
    });

    test('optUserOut and forgetUserOptOut write and clear localStorage too', () => {
      const localStorage = fakeStorage();
      const t = ready({ win: { localStorage } });
      t.push(['optUserOut']);
      assert.equal(localStorage.items.get('tally_ignore'), '1');
      // The cookie alone gone (a browser clearing cookies only): still out.
      t.jar.jar.delete('tally_ignore');
      assert.equal(t.window.Tally.isUserOptedOut(), true);
      t.push(['trackPageView']);
      assert.equal(t.sent.length, 0);
      t.push(['forgetUserOptOut']);
      assert.equal(localStorage.items.has('tally_ignore'), false);
      assert.equal(t.window.Tally.isUserOptedOut(), false);
      t.push(['trackPageView']);
      assert.equal(t.sent.length, 1);
    });

    test('blocked localStorage: the cookie still works and nothing throws', () => {
      const localStorage = fakeStorage({}, { throws: true });
      const t = ready({ win: { localStorage }, paq: [['trackPageView']] });
      assert.equal(t.sent.length, 1);
      assert.equal(t.window.Tally.isUserOptedOut(), false);
      t.push(['optUserOut']);
      assert.equal(t.window.Tally.isUserOptedOut(), true);
      t.push(['trackPageView']);
      assert.equal(t.sent.length, 1);
      t.push(['forgetUserOptOut']);
      assert.equal(t.window.Tally.isUserOptedOut(), false);
    });

    test('localStorage values other than 1 do not count, as for the cookie', () => {
      const t = ready({ win: { localStorage: fakeStorage({ tally_ignore: '0' }) }, paq: [['trackPageView']] });
      assert.equal(t.sent.length, 1);
    });

    test('no Secure attribute on http pages', () => {
      const t = ready({ href: 'http://site.example/' });
      t.push(['optUserOut']);
      assert.deepEqual(t.jar.writes, ['tally_ignore=1;Path=/;Max-Age=63072000;SameSite=Lax']);
    });

    test('an existing opt-out cookie blocks from the first hit; isUserOptedOut in a function command', () => {
      let seen;
      const t = ready({ cookies: { other: 'x', tally_ignore: '1' }, paq: [['trackPageView'], [function () { seen = this.isUserOptedOut(); }]] });
      assert.equal(t.sent.length, 0);
      assert.equal(seen, true);
    });

    test('setOptOutCookieName', () => {
      const t = ready({ cookies: { tally_ignore: '1' }, paq: [['setOptOutCookieName', 'my_out'], ['trackPageView']] });
      assert.equal(t.sent.length, 1); // tally_ignore no longer consulted
      t.push(['optUserOut']);
      assert.equal(t.jar.writes[0], 'my_out=1;Path=/;Max-Age=63072000;SameSite=Lax;Secure');
      t.push(['trackPageView']);
      assert.equal(t.sent.length, 1);
    });

    test("Matomo's mtm_consent_removed cookie blocks every hit, also when set later", () => {
      let seen;
      const t = ready({
        cookies: { mtm_consent_removed: '1700000000000' },
        paq: [['trackPageView'], ['trackEvent', 'c', 'a'], [function () { seen = this.isUserOptedOut(); }]],
      });
      t.push(['trackSiteSearch', 'k'], ['trackLink', 'https://x.example/', 'link']);
      assert.equal(t.sent.length, 0);
      assert.equal(seen, true);
      // Matomo reads an empty value as no refusal; so do we.
      const empty = ready({ cookies: { mtm_consent_removed: '' }, paq: [['trackPageView']] });
      assert.equal(empty.sent.length, 1);
      // Matomo's opt-out form on the site sets it while the page is open.
      empty.jar.jar.set('mtm_consent_removed', '1700000000000');
      empty.push(['trackPageView']);
      assert.equal(empty.sent.length, 1);
    });

    test('mtm_consent_removed: setConsentGiven keeps it, forgetUserOptOut lifts it', () => {
      const t = ready({ cookies: { mtm_consent_removed: '1' }, paq: [['requireConsent'], ['trackPageView'], ['setConsentGiven']] });
      assert.equal(t.sent.length, 0);
      assert.equal(t.jar.jar.get('mtm_consent_removed'), '1');
      t.push(['forgetUserOptOut']);
      assert.ok(t.jar.writes.includes('mtm_consent_removed=;Path=/;Max-Age=0;SameSite=Lax;Secure'), t.jar.writes.join('\n'));
      assert.equal(t.window.Tally.isUserOptedOut(), false);
      t.push(['trackPageView']);
      assert.equal(t.sent.length, 1);
    });

    test('no cookies are written by default', (tc) => {
      // The heartbeat would otherwise keep a real 15 s timer loop alive after the test.
      tc.mock.timers.enable({ apis: ['setTimeout'] });
      const t = ready({ paq: [['trackPageView'], ['trackEvent', 'c', 'a'], ['enableLinkTracking'], ['enableHeartBeatTimer'], ['enableSpaTracking']] });
      assert.equal(t.sent.length, 2);
      assert.deepEqual(t.jar.writes, []);
      for (const h of t.hits()) for (const k of ['_id', '_idvc', '_viewts']) assert.equal(k in h, false);
    });

    test('requireConsent holds hits; setConsentGiven sends them in order with their original data', () => {
      const t = ready({ paq: [['requireConsent'], ['trackPageView'], ['trackEvent', 'c', 'a']] });
      assert.equal(t.sent.length, 0);
      t.document.title = 'Later';
      t.go('https://site.example/later');
      t.push(['setConsentGiven']);
      const h = t.hits();
      assert.equal(h.length, 2);
      assert.equal(h[0].action_name, 'Home');
      assert.equal(h[0].url, 'https://site.example/page?x=1');
      assert.equal(h[1].e_a, 'a');
      assert.equal(h[1].pv_id, h[0].pv_id);
      t.push(['trackEvent', 'c', 'b']);
      assert.equal(t.sent.length, 3);
      t.push(['forgetConsentGiven'], ['trackEvent', 'c', 'held']);
      assert.equal(t.sent.length, 3);
      t.push(['setConsentGiven']);
      assert.deepEqual(t.hits().map((x) => x.e_a), [undefined, 'a', 'b', 'held']);
      assert.deepEqual(t.jar.writes.filter((w) => !/Max-Age=0/.test(w)), []); // consent kept in memory only
    });

    test('held hits are dropped if the visitor opts out before consenting', () => {
      const t = ready({ paq: [['requireConsent'], ['trackPageView']] });
      t.push(['optUserOut'], ['setConsentGiven']);
      assert.equal(t.sent.length, 0);
    });

    test('setConsentGiven queued before load lets hits through', () => {
      const t = ready({ paq: [['requireConsent'], ['trackPageView'], ['setConsentGiven']] });
      assert.equal(t.sent.length, 1);
    });

    test('with enableCookies, consent is remembered in a cookie', () => {
      const t = ready({ paq: [['enableCookies'], ['requireConsent'], ['trackPageView']] });
      assert.equal(t.sent.length, 0);
      t.push(['setConsentGiven']);
      assert.equal(t.sent.length, 1);
      assert.ok(t.jar.writes.includes('tally_consent=1;Path=/;Max-Age=33696000;SameSite=Lax;Secure'));
      const next = ready({ cookies: Object.fromEntries(t.jar.jar), paq: [['enableCookies'], ['requireConsent'], ['trackPageView']] });
      assert.equal(next.sent.length, 1);
      next.push(['forgetConsentGiven'], ['trackPageView']);
      assert.equal(next.sent.length, 1);
      assert.equal(next.jar.jar.has('tally_consent'), false);
      assert.equal(next.jar.jar.has('_tly_id'), false);
    });
  });

  describe(`${file}: visitor cookie (enableCookies)`, () => {
    test('_id, _idvc, _viewts like Matomo; new visit after 30 minutes', () => {
      const t = ready({ paq: [['enableCookies'], ['trackPageView']] });
      const [first] = t.hits();
      assert.match(first._id, /^[0-9a-f]{16}$/);
      assert.equal(first._idvc, '1');
      assert.equal('_viewts' in first, false);
      const ts = NOW / 1000;
      assert.deepEqual(t.jar.writes, [`_tly_id=${first._id}.1..${ts};Path=/;Max-Age=33696000;SameSite=Lax;Secure`]);

      t.window.__now = NOW + 600e3; // same visit
      t.push(['trackEvent', 'c', 'a']);
      assert.equal(t.hits()[1]._id, first._id);
      assert.equal(t.hits()[1]._idvc, '1');

      t.window.__now = NOW + 600e3 + 1801e3; // new visit
      t.push(['trackPageView']);
      const third = t.hits()[2];
      assert.equal(third._id, first._id);
      assert.equal(third._idvc, '2');
      assert.equal(third._viewts, String(ts + 600));
      assert.deepEqual(Object.keys(third).slice(-4), ['_id', '_idvc', '_viewts', 'rand']);
    });

    test('disableCookies wins and deletes the cookie', () => {
      const t = ready({ cookies: { _tly_id: '0123456789abcdef.3.1.2' }, paq: [['enableCookies'], ['disableCookies'], ['trackPageView']] });
      assert.equal('_id' in t.hits()[0], false);
      assert.equal(t.jar.jar.has('_tly_id'), false);
    });

    test('no visitor cookie before consent', () => {
      const t = ready({ paq: [['enableCookies'], ['requireConsent'], ['trackPageView']] });
      assert.deepEqual(t.jar.writes, []);
      t.push(['setConsentGiven']);
      assert.match(t.hits()[0]._id, /^[0-9a-f]{16}$/);
    });
  });

  describe(`${file}: link tracking`, () => {
    const click = (t, target, type = 'click', button = 0) => t.document.fire(type, { target, button });

    test('nothing is tracked without enableLinkTracking', () => {
      const t = ready();
      assert.equal(t.document.count('click'), 0);
    });

    test('classification: outlink, download, internal, mailto, javascript', () => {
      const t = ready({ paq: [['enableLinkTracking'], ['enableLinkTracking']] });
      assert.equal(t.document.count('click'), 1); // idempotent
      click(t, anchor('https://other.example/page'));
      click(t, anchor('https://site.example/files/report.PDF?v=2'));
      click(t, anchor('https://site.example/other-page'));
      click(t, anchor('https://www.site.example/same-site')); // www. is the same site
      click(t, anchor('mailto:someone@site.example'));
      click(t, anchor('javascript:void(0)'));
      click(t, anchor('tel:+123'));
      click(t, anchor('https://cdn.example/setup.exe'));
      click(t, anchor('https://site.example/export', { download: true }));
      click(t, span(anchor('https://nested.example/')));
      click(t, span(null));
      const h = t.hits().map(strip);
      assert.deepEqual(h, [
        { ...BASE, link: 'https://other.example/page' },
        { ...BASE, download: 'https://site.example/files/report.PDF?v=2' },
        { ...BASE, download: 'https://cdn.example/setup.exe' },
        { ...BASE, download: 'https://site.example/export' },
        { ...BASE, link: 'https://nested.example/' },
      ]);
    });

    test('middle click counts (auxclick), right click does not', () => {
      const t = ready({ paq: [['enableLinkTracking']] });
      click(t, anchor('https://other.example/mid'), 'auxclick', 1);
      click(t, anchor('https://other.example/right'), 'auxclick', 2);
      assert.deepEqual(t.hits().map((h) => h.link), ['https://other.example/mid']);
    });

    test('default extensions include the common document and archive types', () => {
      const t = ready({ paq: [['enableLinkTracking']] });
      const exts = ['pdf', 'zip', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'csv', 'mp3', 'mp4', 'dmg', 'exe', 'gz', 'tar', '7z', 'rar', 'epub', 'txt'];
      for (const x of exts) click(t, anchor(`https://site.example/f.${x}`));
      click(t, anchor('https://site.example/f.html'));
      click(t, anchor('https://site.example/pdf'));
      assert.deepEqual(t.hits().map((h) => h.download), exts.map((x) => `https://site.example/f.${x}`));
    });

    test('setDownloadExtensions replaces, addDownloadExtensions extends (array or "a|b")', () => {
      const t = ready({ paq: [['enableLinkTracking'], ['setDownloadExtensions', 'foo|bar']] });
      click(t, anchor('https://site.example/a.pdf'));
      click(t, anchor('https://site.example/a.foo'));
      t.push(['addDownloadExtensions', ['baz', 'qux']]);
      click(t, anchor('https://site.example/a.qux'));
      click(t, anchor('https://site.example/a.bar'));
      t.push(['setDownloadExtensions', ['one']]);
      click(t, anchor('https://site.example/a.foo'));
      click(t, anchor('https://site.example/a.one'));
      assert.deepEqual(t.hits().map((h) => h.download), [
        'https://site.example/a.foo',
        'https://site.example/a.qux',
        'https://site.example/a.bar',
        'https://site.example/a.one',
      ]);
    });
  });

  describe(`${file}: SPA tracking`, () => {
    test('pushState sends a page view with new pv_id, previous URL as referrer and the new title', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const b = ready({ paq: [['trackPageView'], ['enableSpaTracking'], ['enableSpaTracking']] });
      const ret = b.history.pushState({}, '', '/next');
      assert.equal(ret, undefined);
      b.document.title = 'Next page'; // set by the app after navigating
      assert.equal(b.sent.length, 1);
      t.mock.timers.tick(100);
      const [first, second] = b.hits();
      assert.equal(b.sent.length, 2); // enableSpaTracking twice does not double
      assert.deepEqual(strip(second), { ...BASE, url: 'https://site.example/next', urlref: 'https://site.example/page?x=1', action_name: 'Next page' });
      assert.notEqual(second.pv_id, first.pv_id);

      b.push(['trackEvent', 'c', 'a']); // later hits belong to the new view
      assert.equal(b.hits()[2].pv_id, second.pv_id);
      assert.equal(b.hits()[2].url, 'https://site.example/next');
    });

    test('replaceState to the same URL or a #section does nothing; #/route and popstate count', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const b = ready({ paq: [['enableSpaTracking']] });
      b.history.replaceState({ scroll: 1 }, '');
      b.history.replaceState({}, '', '/page?x=1');
      b.history.pushState({}, '', '#section');
      t.mock.timers.tick(200);
      assert.equal(b.sent.length, 0);
      b.history.pushState({}, '', '#/route');
      t.mock.timers.tick(100);
      assert.equal(b.hits()[0].url, 'https://site.example/page?x=1#/route');
      b.go('https://site.example/back');
      b.window.fire('popstate', {});
      t.mock.timers.tick(100);
      const h = b.hits()[1];
      assert.equal(h.url, 'https://site.example/back');
      assert.equal(h.urlref, 'https://site.example/page?x=1#/route');
    });

    test('a custom URL and title from the first view are not reused', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const b = ready({ paq: [['setCustomUrl', 'https://site.example/custom'], ['setDocumentTitle', 'Fixed'], ['trackPageView'], ['enableSpaTracking']] });
      b.history.pushState(null, '', '/b');
      t.mock.timers.tick(100);
      assert.equal(b.hits()[1].url, 'https://site.example/b');
      assert.equal(b.hits()[1].action_name, 'Home');
    });

    test('push then replace within the delay is one page view', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const b = ready({ paq: [['enableSpaTracking']] });
      b.history.pushState(null, '', '/a');
      b.history.replaceState(null, '', '/a?tab=1');
      t.mock.timers.tick(100);
      assert.deepEqual(b.hits().map((h) => h.url), ['https://site.example/a?tab=1']);
    });

    test('the original history method runs and its errors pass through', () => {
      const boom = new Error('SecurityError');
      const calls = [];
      const t = ready({
        before: (w) => {
          w.history.pushState = (...a) => {
            calls.push(a);
            if (a[2] === '/bad') throw boom;
            return 'ret';
          };
        },
        paq: [['enableSpaTracking']],
      });
      assert.equal(t.history.pushState(1, '', '/ok'), 'ret');
      assert.deepEqual(calls, [[1, '', '/ok']]);
      assert.throws(() => t.history.pushState(null, '', '/bad'), boom);
    });
  });

  describe(`${file}: heartbeat`, () => {
    test('pings only after activity, with the page view pv_id', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const b = ready({ paq: [['trackPageView'], ['enableHeartBeatTimer']] });
      t.mock.timers.tick(15000);
      assert.equal(b.sent.length, 1); // no activity: no ping
      b.window.fire('scroll');
      t.mock.timers.tick(14999);
      assert.equal(b.sent.length, 1);
      t.mock.timers.tick(1);
      assert.equal(b.sent.length, 2);
      const [pv, ping] = b.hits();
      assert.deepEqual(strip(ping), { ...BASE, ping: '1' });
      assert.equal(ping.pv_id, pv.pv_id);
      t.mock.timers.tick(15000);
      assert.equal(b.sent.length, 2); // activity is consumed by the ping
    });

    test('custom delay; no ping while hidden; ping when the page becomes hidden', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const b = ready({ paq: [['enableHeartBeatTimer', 5], ['trackPageView']] });
      b.window.fire('keydown');
      b.document.hidden = true;
      t.mock.timers.tick(5000);
      assert.equal(b.sent.length, 1);
      b.document.fire('visibilitychange');
      assert.equal(b.sent.length, 2);
      assert.equal(b.hits()[1].ping, '1');
      b.document.fire('visibilitychange'); // nothing new happened
      assert.equal(b.sent.length, 2);
      b.document.hidden = false;
      b.window.fire('mousemove');
      t.mock.timers.tick(5000);
      assert.equal(b.sent.length, 3);
    });

    test('no ping before the first page view; a page view resets activity', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const b = ready({ paq: [['enableHeartBeatTimer']] });
      b.window.fire('click');
      t.mock.timers.tick(15000);
      assert.equal(b.sent.length, 0);
      b.window.fire('touchstart');
      b.push(['trackPageView']);
      t.mock.timers.tick(15000);
      assert.equal(b.sent.length, 1);
    });

    test('no ping when opted out', (t) => {
      t.mock.timers.enable({ apis: ['setTimeout'] });
      const b = ready({ paq: [['trackPageView'], ['enableHeartBeatTimer']] });
      b.push(['optUserOut']);
      b.window.fire('scroll');
      t.mock.timers.tick(15000);
      assert.equal(b.sent.length, 1);
    });
  });

  describe(`${file}: transport`, () => {
    const FETCH_INIT = { method: 'POST', keepalive: true, mode: 'no-cors', credentials: 'include' };

    test('sendBeacon missing: fetch with keepalive, no-cors, credentials', () => {
      const t = ready({ beacon: false, paq: [['trackPageView']] });
      assert.equal(t.sent[0].via, 'fetch');
      assert.equal(t.sent[0].url, TRACKER);
      const { body, ...init } = t.sent[0].init;
      assert.deepEqual(init, FETCH_INIT);
      assert.equal(params(body).action_name, 'Home');
    });

    test('sendBeacon refusing (false) or throwing falls back to fetch', () => {
      for (const beacon of [() => false, () => { throw new TypeError('nope'); }]) {
        const t = ready({ beacon, paq: [['trackPageView']] });
        assert.deepEqual(t.sent.map((s) => s.via), ['fetch']);
      }
    });

    test('neither sendBeacon nor fetch: image GET with the same parameters', () => {
      const t = ready({ beacon: false, fetch: false, paq: [['trackEvent', 'c', 'a b']] });
      assert.equal(t.sent[0].via, 'image');
      const [base, query] = t.sent[0].url.split('?');
      assert.equal(base, TRACKER);
      assert.deepEqual(strip(params(query)), { ...BASE, e_c: 'c', e_a: 'a b' });
    });

    test('a rejected fetch is swallowed', async () => {
      let rejected = false;
      const t = ready({
        beacon: false,
        fetch: () => Promise.reject(new TypeError('offline')).finally(() => (rejected = true)),
        paq: [['trackPageView']],
      });
      await new Promise((r) => setImmediate(r));
      assert.equal(rejected, true); // and no unhandledRejection failed the test
    });
  });

  describe(`${file}: never throws into the page`, () => {
    test('unknown commands, bad entries and throwing functions', () => {
      const t = ready({
        paq: [['noSuchCommand', 1], null, 42, [], [function () { throw new Error('boom'); }], ['toString'], ['trackPageView']],
      });
      assert.equal(t.sent.length, 1);
      assert.doesNotThrow(() => t.push(['alsoUnknown'], [() => { throw new Error('x'); }], undefined));
      assert.doesNotThrow(() => t.push(function () { throw new Error('bare'); }));
    });

    test('all transports throwing', () => {
      const t = ready({
        beacon: () => { throw new Error('a'); },
        fetch: () => { throw new Error('b'); },
        win: { Image: class { constructor() { throw new Error('c'); } } },
      });
      assert.doesNotThrow(() => t.push(['trackPageView']));
      assert.doesNotThrow(() => t.window.Tally.trackEvent('c', 'a'));
    });

    test('document.cookie throwing (sandboxed iframe)', () => {
      const t = ready({
        before: (w) => Object.defineProperty(w.document, 'cookie', { get() { throw new Error('SecurityError'); }, set() { throw new Error('SecurityError'); } }),
      });
      assert.doesNotThrow(() => t.push(['trackPageView'], ['optUserOut'], ['isUserOptedOut']));
      assert.doesNotThrow(() => t.window.Tally.isUserOptedOut());
    });

    test('link tracking with odd targets', () => {
      const t = ready({ paq: [['enableLinkTracking']] });
      assert.doesNotThrow(() => t.document.fire('click', { target: {}, button: 0 }));
      assert.doesNotThrow(() => t.document.fire('click', { target: { closest: () => ({ href: { baseVal: 'x' } , hasAttribute: () => false }) }, button: 0 }));
      assert.equal(t.sent.length, 0);
    });

    test('a _paq that is not an array', () => {
      assert.doesNotThrow(() => load({ file, paq: { not: 'an array' } }));
    });
  });
}
