/*
 * optout.js: the opt-out widget for a site's privacy policy.
 *
 * The collector serves it at /optout.js?idsite=ID&lang=xx with TALLY_OPTOUT
 * (below) replaced by a JSON object made from its live configuration: the
 * site's name, the texts of the opt-out page in that language, the opt-out
 * cookie's name. It runs on the site's own page, so the visitor's choice is
 * kept first-party, on the site, where tally.js reads it before sending
 * anything. (A cookie set by a page of the collector is third-party on the
 * site: partitioned or blocked by browsers, and invisible to tally.js.)
 *
 * It renders into <div id="tally-optout"> (or the first element with a
 * data-tally-optout attribute) with DOM APIs only: no innerHTML, no inline
 * styles, so it runs under a strict CSP that allows just this script. The
 * site styles it through the tally-optout-* classes.
 *
 * Stable hooks (for sites and tests): #tally-optout-status (role=status, the
 * current state), #tally-optout-button, #tally-optout-result (what happened
 * to the last press), data-tally-state="in|out" on the container.
 */
((w, d, n, l, c) => {
  let name = c.cookie; // the opt-out cookie, and the localStorage key of the same name
  // A site configured as *.example.org gets its cookie for example.org, so a choice made on
  // www.example.org also holds on shop.example.org (localStorage is per origin and cannot).
  let host = l.hostname;
  let domain = c.cookie_domains.filter((x) => host == x || host.endsWith('.' + x)).sort((a, b) => b.length - a.length)[0];
  let TWO_YEARS = 63072000; // seconds, as tally.js's optUserOut and the collector's cookie
  // Set by Matomo's own opt-out on the site; honoured and lifted, as tally.js does.
  let REMOVED = 'mtm_consent_removed';

  let get = (k) => (d.cookie.match('(?:^|;) *' + k + '=([^;]*)') || [])[1];
  let set = (k, v, age, domain) =>
    (d.cookie = k + '=' + v + ';Path=/;Max-Age=' + age + ';SameSite=Lax' +
      (l.protocol == 'https:' ? ';Secure' : '') + (domain ? ';Domain=' + domain : ''));
  // localStorage throws where the browser blocks storage for the site.
  let storage = (method, ...a) => {
    try {
      return w.localStorage[method](...a);
    } catch {}
  };

  // Exactly what tally.js checks before it sends anything, so the widget never
  // shows "opted out" for a state the tracker would not honour.
  let optedOut = () => get(name) == 1 || storage('getItem', name) == 1 || !!get(REMOVED);
  let signal = () =>
    (n.doNotTrack || w.doNotTrack || n.msDoNotTrack) == 1 || n.globalPrivacyControl === true;

  let add = (parent, tag, cls, text) => {
    let e = d.createElement(tag);
    e.className = 'tally-optout-' + cls;
    if (text) e.textContent = text;
    return parent.appendChild(e);
  };

  let render = () => {
    let root = d.getElementById('tally-optout') || d.querySelector('[data-tally-optout]');
    // Once: a second copy of the script must not add a second widget.
    if (!root || root.getAttribute('data-tally-rendered')) return;
    root.setAttribute('data-tally-rendered', 1);
    root.classList.add('tally-optout');
    if (!root.lang) root.lang = c.lang;
    add(root, 'p', 'title', c.title);
    let status = add(root, 'p', 'status');
    status.id = 'tally-optout-status';
    status.setAttribute('role', 'status');
    add(root, 'p', 'text', c.intro);
    add(root, 'p', 'heading', c.recorded_heading);
    let list = add(root, 'ul', 'list');
    c.recorded.forEach((t) => add(list, 'li', 'item', t));
    add(root, 'p', 'text', c.not_recorded);
    add(root, 'p', 'heading', c.kept);
    list = add(root, 'ul', 'list');
    add(list, 'li', 'item', c.stored_where);
    add(list, 'li', 'item', c.retention);
    add(root, 'p', 'heading', c.choice);
    add(root, 'p', 'text', c.signals);
    add(root, 'p', 'text', c.storage);
    let button = add(root, 'button', 'button');
    button.type = 'button';
    button.id = 'tally-optout-button';
    let result = add(root, 'p', 'result');
    result.id = 'tally-optout-result';
    result.setAttribute('aria-live', 'polite');

    let show = () => {
      let out = optedOut();
      let state = out || signal() ? 'out' : 'in';
      status.textContent = out ? c.status_out : signal() ? c.status_signal : c.status_in;
      status.className = 'tally-optout-status tally-optout-' + state;
      root.setAttribute('data-tally-state', state);
      button.textContent = out ? c.button_in : c.button_out;
      return out;
    };

    button.addEventListener('click', () => {
      let want = !optedOut();
      if (want) {
        set(name, 1, TWO_YEARS, domain);
        storage('setItem', name, 1);
        // Matomo's own tracker (a site still loading matomo.js) reads this one.
        if (!get(REMOVED)) set(REMOVED, Date.now(), TWO_YEARS);
      } else {
        storage('removeItem', name);
        // Our cookie may be set for the site's domain, Matomo's for any
        // parent; a cookie is only deleted with the Domain it was set with, so
        // try the host-only one and every parent with two labels or more (the
        // browser ignores a public suffix).
        let parts = host.split('.');
        let domains = [''];
        while (parts.length > 1) domains.push(parts.join('.')), parts.shift();
        for (let dom of domains) {
          set(name, '', 0, dom);
          set(REMOVED, '', 0, dom);
        }
      }
      // Read back what the browser kept: "saved" only if it really is stored.
      let ok = show() == want;
      result.textContent = ok ? c.saved : c.not_saved;
      result.className = 'tally-optout-result tally-optout-' + (ok ? 'saved' : 'failed');
    });
    show();
  };

  d.readyState == 'loading' ? d.addEventListener('DOMContentLoaded', render) : render();
})(window, document, navigator, location, TALLY_OPTOUT);
