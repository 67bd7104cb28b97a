/*
 * tally.js: the browser tracker for the tally collector.
 *
 * It speaks Matomo's HTTP tracking API and reads Matomo's `_paq` command
 * queue, so a site moving from Matomo only changes the URL in its snippet.
 * The budget is 2 KB gzipped, so the code favours shared helpers, short
 * locals (the minifier mangles them) and no classes. Public names (the
 * command table and the request parameters) are Matomo's and must stay as
 * they are.
 *
 * Privacy defaults: no cookies, Do Not Track and Global Privacy Control are
 * respected, nothing is sent when the visitor opted out, and with
 * requireConsent nothing is sent until consent is given.
 */
((w, d, n, l) => {
  // A second copy of the script must not take over a queue the first copy
  // already drains (it would run every command twice).
  if (w.Tally) return;

  let TWO_YEARS = 63072000; // opt-out cookie lifetime, seconds
  let THIRTEEN_MONTHS = 33696000; // visitor and consent cookies (CNIL limit)
  let VISIT_GAP = 1800; // seconds of inactivity that start a new visit
  let SPA_DELAY = 100; // ms: lets the router set document.title first
  let VISITOR_COOKIE = '_tly_id';
  let CONSENT_COOKIE = 'tally_consent';
  // Set on the site's own domain by Matomo's JavaScript opt-out (and its
  // forgetConsentGiven); a non-empty value means the visitor said no.
  let MATOMO_REMOVED = 'mtm_consent_removed';

  let trackerUrl, siteId, customUrl, customTitle, customRef, pvId;
  let cookies, consentRequired, consentGiven;
  let heartbeatMs, active, spaUrl, linkTracking;
  let respectDnt = 1;
  let respectGpc = 1;
  let optOutCookie = 'tally_ignore';
  let held = []; // hits waiting for consent, already built
  // Download extensions: the common part of Matomo's list (no images, no
  // scripts, no formats nobody links to any more); each one costs ~3 gzipped
  // bytes. Sites extend it with addDownloadExtensions. Regex syntax.
  let downloads = '7z|apk|avi|bz2|csv|deb|dmg|docx?|epub|exe|gz|iso|mov|mp[34]|msi|od[pst]|pdf|pptx?|rar|rpm|rtf|tar|tgz|txt|wav|xlsx?|xz|zip';

  // Every way into this file (commands, listeners, timers) goes through
  // safe(): a tracker bug must never surface as an exception in the host
  // page. Functions run with the tracker as `this`, as Matomo does.
  let safe = (f) => (...a) => {
    try {
      return f.apply(T, a);
    } catch {}
  };

  // Capture phase, so a page handler calling stopPropagation() does not
  // hide clicks from us; none of our handlers ever prevents defaults.
  let on = (target, events, f) =>
    events.split(' ').forEach((e) => target.addEventListener(e, safe(f), true));

  // `len` random chars in the given radix ([0-9a-z] for 36, hex for 16).
  // One Math.random() may give fewer digits than asked, hence the loop.
  let rnd = (len, radix) => {
    let s = '';
    while (s.length < len) s += Math.random().toString(radix).slice(2);
    return s.slice(0, len);
  };

  let getCookie = (k) => (d.cookie.match('(?:^|;) *' + k + '=([^;]*)') || [])[1];
  // Max-Age 0 deletes the cookie.
  let setCookie = (k, v, age) =>
    (d.cookie = k + '=' + v + ';Path=/;Max-Age=' + age + ';SameSite=Lax' +
      (l.protocol == 'https:' ? ';Secure' : ''));

  // Matomo's refusal left from the site's Matomo opt-out form, or the
  // opt-out kept on the site itself (by optUserOut, or by the collector's
  // widget /optout.js in the privacy policy): a cookie and a localStorage
  // entry of the same name, either one enough (a browser may keep one and not
  // the other). Any of them stops every hit, as in Matomo. localStorage
  // throws where the browser blocks storage for the site.
  let store = (m, v) => {
    try {
      return localStorage[m + 'Item'](optOutCookie, v);
    } catch {}
  };
  let optedOut = () => !!getCookie(MATOMO_REMOVED) || getCookie(optOutCookie) == 1 || store('get') == 1;

  // Hits that must be dropped (not merely held): opt-out, DNT, GPC.
  let blocked = () => {
    let dnt = n.doNotTrack || w.doNotTrack || n.msDoNotTrack;
    return optedOut() ||
      (respectDnt && dnt == 1) || // 'yes' was only ever sent by browsers too old for this file
      (respectGpc && n.globalPrivacyControl === true);
  };

  // Consent lives in memory; it is also kept in a cookie only when the site
  // enabled cookies, otherwise the visitor is asked again on every page load.
  let consented = () =>
    !consentRequired || consentGiven || (cookies && getCookie(CONSENT_COOKIE) == 1);

  // Matomo-style visitor cookie, only with enableCookies():
  // "<16 hex id>.<visit count>.<previous visit ts>.<last hit ts>".
  let visitor = (p) => {
    let now = (Date.now() / 1e3) | 0;
    let [id, count, prev, last] = (getCookie(VISITOR_COOKIE) || '').split('.');
    id = id || rnd(16, 16);
    if (now - (last | 0) > VISIT_GAP) {
      count = (count | 0) + 1;
      prev = last;
    }
    setCookie(VISITOR_COOKIE, [id, count, prev, now].join('.'), THIRTEEN_MONTHS);
    p._id = id;
    p._idvc = count;
    p._viewts = prev;
  };

  // The body is a urlencoded string. sendBeacon labels a string body
  // text/plain, a CORS-safelisted type, so there is no preflight; the
  // collector parses it as form data regardless of the content type.
  let send = (body) => {
    try {
      if (n.sendBeacon(trackerUrl, body)) return;
    } catch {}
    try {
      fetch(trackerUrl, {
        method: 'POST',
        body,
        keepalive: true,
        mode: 'no-cors',
        credentials: 'include',
      }).catch(() => {});
    } catch {
      new Image().src = trackerUrl + '?' + body;
    }
  };

  // Last step for every hit, also for hits released by setConsentGiven.
  let transmit = (p) => {
    if (blocked() || !trackerUrl) return;
    if (!consented()) return held.push(p);
    if (cookies) visitor(p);
    p.rand = rnd(6, 36);
    let body = '';
    // Empty values are left out; 0 is a value (e_v=0), false is not
    // (Matomo snippets pass false for "no search category").
    for (let k in p) if (p[k] || p[k] === 0) body += (body && '&') + k + '=' + encodeURIComponent(p[k]);
    send(body);
  };

  // Build a hit now (URL, title, time are those of the moment of the call,
  // even if consent holds it back) and hand it on.
  let hit = (extra) => {
    let t = new Date();
    let s = w.screen;
    transmit({
      idsite: siteId,
      rec: 1,
      apiv: 1,
      ...extra,
      url: customUrl || l.href,
      urlref: customRef || d.referrer,
      res: s.width + 'x' + s.height,
      h: t.getHours(),
      m: t.getMinutes(),
      s: t.getSeconds(),
      pv_id: pvId,
      send_image: 0,
    });
  };

  // A heartbeat is due when the visitor did something since the last hit of
  // this page view; it keeps the page view's pv_id so the server extends the
  // time on page instead of counting a new view.
  let beat = () => {
    if (active && pvId) {
      active = 0;
      hit({ ping: 1 });
    }
  };

  // Hash-only changes (#section) are in-page jumps, not page views; hash
  // routes (#/path, #!/path) are.
  let route = (u) => u.replace(/#(?![/!]).*/, '');

  // Called after every history change. The delay lets the application
  // finish rendering (and set document.title) and merges a push that is
  // immediately followed by a replace into one page view.
  let navigated = () =>
    setTimeout(safe(() => {
      let u = l.href;
      if (route(u) != route(spaUrl)) {
        customRef = spaUrl;
        spaUrl = u;
        customUrl = customTitle = 0; // set for the first view, stale now
        T.trackPageView();
      }
    }), SPA_DELAY);

  // Both setters accept Matomo's forms: an array or a 'pdf|zip' string.
  let extensions = (x) => (x + '').replace(/,/g, '|');

  // Click handler for enableLinkTracking. `click` only fires for the
  // primary button, `auxclick` for the others: count the middle button
  // (open in new tab), skip the right one (context menu).
  let linkClick = (e) => {
    let a = e.target.closest('a');
    let host = (h) => h.replace(/^www\./, '');
    if (!a || e.button > 1 || !/^https?:$/.test(a.protocol)) return; // mailto:, javascript:, tel:, SVG <a>
    let type = a.hasAttribute('download') || RegExp('\\.(' + downloads + ')$', 'i').test(a.pathname)
      ? 'download'
      : host(a.hostname) != host(l.hostname) && 'link';
    if (type) T.trackLink(a.href, type);
  };

  let commands = {
    setTrackerUrl(u) {
      trackerUrl = u;
    },
    setSiteId(i) {
      siteId = i;
    },
    setCustomUrl(u) {
      customUrl = u;
    },
    setDocumentTitle(t) {
      customTitle = t;
    },
    setReferrerUrl(u) {
      customRef = u;
    },
    setRespectDoNotTrack(b) {
      respectDnt = b;
    },
    setRespectGlobalPrivacyControl(b) {
      respectGpc = b;
    },
    setOptOutCookieName(k) {
      optOutCookie = k;
    },
    setDownloadExtensions(x) {
      downloads = extensions(x);
    },
    addDownloadExtensions(x) {
      downloads += '|' + extensions(x);
    },
    // Cookies are opt-in for the site operator; the default is none.
    enableCookies() {
      cookies = 1;
    },
    disableCookies() {
      cookies = 0;
      setCookie(VISITOR_COOKIE, '', 0);
    },
    requireConsent() {
      consentRequired = 1;
    },
    setConsentGiven() {
      consentGiven = 1;
      if (cookies) setCookie(CONSENT_COOKIE, 1, THIRTEEN_MONTHS);
      held.splice(0).forEach(transmit); // oldest first, as they were made
    },
    // As in Matomo: consent becomes required again and our cookies go.
    forgetConsentGiven() {
      consentGiven = 0;
      consentRequired = 1;
      setCookie(CONSENT_COOKIE, '', 0);
      setCookie(VISITOR_COOKIE, '', 0);
    },
    // The collector honours the same cookie server-side when it is
    // first-party to it; across sites only this script sees the choice.
    optUserOut() {
      setCookie(optOutCookie, 1, TWO_YEARS);
      store('set', 1);
    },
    // Opting back in lifts Matomo's refusal too, as Matomo's own
    // forgetUserOptOut does. setConsentGiven does not (Matomo's does): a
    // consent banner's routine call must not undo a visitor's opt-out.
    forgetUserOptOut() {
      setCookie(optOutCookie, '', 0);
      setCookie(MATOMO_REMOVED, '', 0);
      store('remove');
    },
    isUserOptedOut: optedOut,
    trackPageView(title) {
      pvId = rnd(6, 36);
      active = 0; // the page view is this view's first "beat"
      hit({ action_name: title || customTitle || d.title });
    },
    trackEvent(c, a, name, value) {
      if (c && a) hit({ e_c: c, e_a: a, e_n: name, e_v: value });
    },
    trackSiteSearch(keyword, category, count) {
      hit({ search: keyword, search_cat: category, search_count: count });
    },
    trackLink(url, type) {
      hit({ [type == 'download' ? type : 'link']: url });
    },
    enableLinkTracking() {
      if (!linkTracking) on(d, 'click auxclick', linkClick);
      linkTracking = 1;
    },
    enableHeartBeatTimer(seconds) {
      let first = !heartbeatMs;
      heartbeatMs = (seconds || 15) * 1e3; // a later call only changes the delay
      if (first) {
        on(w, 'mousemove keydown scroll touchstart click', () => (active = 1));
        // Leaving the page (tab switch, close, navigation on mobile) is the
        // last chance to report the time spent; sendBeacon survives unload.
        on(d, 'visibilitychange', () => d.hidden && beat());
        let tick = () =>
          setTimeout(safe(() => {
            tick();
            if (!d.hidden) beat();
          }), heartbeatMs);
        tick();
      }
    },
    enableSpaTracking() {
      if (spaUrl) return;
      spaUrl = l.href;
      let h = w.history;
      for (let m of ['pushState', 'replaceState']) {
        let orig = h[m];
        // Our wrapper must not change what the app sees: same return value
        // and the original's own exceptions pass through.
        h[m] = (...a) => {
          let r = orig.apply(h, a);
          navigated();
          return r;
        };
      }
      on(w, 'popstate', navigated);
    },
  };

  let T = (w.Tally = {});
  for (let k in commands) T[k] = safe(commands[k]);

  // One queue entry: ['name', ...args], [function, ...args] or a bare
  // function (called with the tracker as `this`). Unknown names are ignored.
  let run = safe((c) => {
    c = [].concat(c);
    let f = c.shift();
    (T[f] || safe(f)).apply(T, c);
  });

  // Matomo applies configuration before anything else, so the usual snippet
  // (trackPageView pushed before setTrackerUrl/setSiteId) works. Configuration
  // entries keep their relative order.
  let config = /^(set|enable|disable|require)/;
  safe(() => {
    let q = (w._paq = w._paq || []);
    let queued = [...q];
    // From now on push executes at once. The push method is replaced on the
    // existing array, so code holding a reference to it keeps working.
    q.push = (...c) => c.forEach(run);
    // `c && c[0]`: a queue may hold junk (null, numbers) that must not stop the rest.
    [1, 0].forEach((pass) => queued.forEach((c) => config.test(c && c[0]) == pass && run(c)));
  })();
})(window, document, navigator, location);
