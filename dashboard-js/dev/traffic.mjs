// Dev only: sends a few hundred Matomo hits of varied shape to a running `tally serve`, spread
// over the last 23 hours (`cdt`, which tally accepts up to 24 h back without a token), so the
// dashboard has something to show. Usage: node dev/traffic.mjs [http://127.0.0.1:8080] [visits]
const base = process.argv[2] ?? 'http://127.0.0.1:8080';
const visits = Number(process.argv[3] ?? 120);
const pick = (a, i) => a[i % a.length];
const UAS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
];
const PAGES = ['/', '/blog/open-access', '/about', '/events/2026', '/contact', '/blog/archives', '/library/opening-hours'];
const REFS = ['', '', 'https://www.google.com/', 'https://duckduckgo.com/', 'https://news.example/story', 'https://mastodon.social/@x', '', 'https://www.bing.com/search?q=tally'];
const CAMPAIGNS = ['', '', '', '?mtm_campaign=autumn-newsletter&mtm_source=newsletter', '?utm_campaign=conference&utm_source=flyer'];
const RES = ['1920x1080', '1280x800', '390x844', '2560x1440', '360x800'];
const LANGS = ['de-DE,de;q=0.9', 'en-US,en;q=0.8', 'de-AT', 'fr-FR', 'en-GB'];

async function hit(ua, lang, params) {
  const q = new URLSearchParams({ idsite: '1', rec: '1', send_image: '0', ...params });
  const r = await fetch(`${base}/matomo.php?${q}`, { headers: { 'User-Agent': ua, 'Accept-Language': lang } });
  if (r.status !== 204) console.error(r.status, await r.text());
}

const now = Math.floor(Date.now() / 1000);
for (let v = 0; v < visits; v++) {
  // A distinct user agent per visitor (tally's visitor key hashes address and user agent).
  const ua = pick(UAS, v) + ` v${v}`;
  const lang = pick(LANGS, v * 7);
  let t = now - 60 - Math.floor(((v * 7919) % 1000) / 1000 * 23 * 3600);
  if (v % 10 === 0) t = now - 120 - v; // some in the last 30 minutes: realtime
  const n = 1 + ((v * 13) % 4);
  const first = pick(PAGES, v * 3) + (v % 5 === 3 ? pick(CAMPAIGNS, v) : '');
  const common = { res: pick(RES, v), _idvc: String(1 + (v % 3 === 0 ? 2 : 0)) };
  for (let p = 0; p < n; p++) {
    const path = p === 0 ? first : pick(PAGES, v + p * 5);
    await hit(ua, lang, {
      ...common, cdt: String(t + p * 40), url: `http://localhost${path}`, action_name: `Page ${path}`,
      ...(p === 0 && pick(REFS, v) ? { urlref: pick(REFS, v) } : {}),
      pf_net: String(20 + (v % 7) * 30), pf_srv: String(50 + (v % 5) * 120), pf_tfr: '10', pf_dm1: String(200 + v * 3), pf_dm2: '40', pf_onl: '5',
    });
  }
  const tt = String(t + n * 40);
  if (v % 4 === 0) await hit(ua, lang, { ...common, cdt: tt, url: 'http://localhost/events/2026', e_c: 'Videos', e_a: 'Play', e_n: 'Welcome video' });
  if (v % 6 === 1) await hit(ua, lang, { ...common, cdt: tt, url: 'http://localhost/', e_c: 'Forms', e_a: 'Submit', e_n: 'Newsletter' });
  if (v % 5 === 2) await hit(ua, lang, { ...common, cdt: tt, url: 'http://localhost/', link: 'https://doi.org/10.1000/182' });
  if (v % 7 === 3) await hit(ua, lang, { ...common, cdt: tt, url: 'http://localhost/library/opening-hours', download: 'http://localhost/files/report-2026.pdf' });
  if (v % 6 === 4) await hit(ua, lang, { ...common, cdt: tt, url: 'http://localhost/search', search: pick(['opening hours', 'open access', 'membership'], v), search_cat: 'site' });
  if (v % 8 === 5) await hit(ua, lang, { ...common, cdt: tt, url: 'http://localhost/contact', idgoal: '1' });
}
console.log(`sent ${visits} visits to ${base}`);
