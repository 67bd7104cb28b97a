#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (committed; run again after editing).

The seeds are real requests: what matomo.js, Matomo's PHP tracker and log importer, and
Plausible's script send, the cases of tally's own tests (src/ and tests/), and the user agents
of src/enrich/device.rs's table. Each file is named after the SHA-1 of its content, as
libFuzzer names what it adds, so that regenerating is idempotent.
"""

import hashlib
import json
import os
import re
import shutil
from urllib.parse import quote, urlencode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
TOKEN = "fuzz-token-0123456789abcdef"  # fuzz/src/lib.rs: TOKEN

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")


def q(pairs):
    """A query string as matomo.js builds it (encodeURIComponent: %20, not +)."""
    return "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}" for k, v in pairs)


UADATA = json.dumps({
    "brands": [{"brand": "Chromium", "version": "131"}, {"brand": "Google Chrome", "version": "131"},
               {"brand": "Not_A Brand", "version": "24"}],
    "fullVersionList": [{"brand": "Chromium", "version": "131.0.6778.86"},
                        {"brand": "Google Chrome", "version": "131.0.6778.86"},
                        {"brand": "Not_A Brand", "version": "24.0.0.0"}],
    "mobile": False, "model": "", "platform": "Windows", "platformVersion": "15.0.0",
    "formFactors": ["Desktop"]}, separators=(",", ":"))

# matomo.js's page view, its fields in the tracker's order.
PAGEVIEW = [
    ("action_name", "Home – Example Institute"), ("idsite", "1"), ("rec", "1"), ("r", "482913"),
    ("h", "14"), ("m", "3"), ("s", "27"), ("url", "https://www.example.org/?mtm_campaign=spring"),
    ("urlref", "https://www.google.com/"), ("_id", "5c5f3b2a9d1e4f70"), ("_idn", "0"),
    ("send_image", "0"), ("_refts", "1749990000"), ("_ref", "https://www.google.com/"),
    ("pv_id", "Ab3dE9"), ("pf_net", "0"), ("pf_srv", "41"), ("pf_tfr", "2"), ("pf_dm1", "183"),
    ("pf_dm2", "95"), ("pf_onl", "4"), ("uadata", UADATA), ("pdf", "1"), ("qt", "0"),
    ("realp", "0"), ("wma", "0"), ("fla", "0"), ("java", "0"), ("ag", "0"), ("cookie", "1"),
    ("res", "1920x1080"), ("_idvc", "3"), ("_viewts", "1749900000"),
]
BASE = [("idsite", "1"), ("rec", "1"), ("url", "https://www.example.org/docs/page"),
        ("_id", "0123456789abcdef"), ("pv_id", "Zx81Qa"), ("send_image", "0")]
ITEMS = '[["SKU-1","Mug",["Kitchen","Cups"],9.5,2],["SKU-2","Pen","Office","1.25",1]]'


def query_string_seeds():
    kinds = [
        PAGEVIEW,
        BASE + [("e_c", "Videos"), ("e_a", "Play"), ("e_n", "Intro"), ("e_v", "12.5"), ("ca", "1")],
        BASE + [("link", "https://partner.example.net/x?ref=1"), ("ca", "1")],
        BASE + [("download", "https://www.example.org/files/report.pdf"), ("ca", "1")],
        BASE + [("search", "privacy analytics"), ("search_cat", "docs"), ("search_count", "4")],
        BASE + [("c_n", "Banner"), ("c_p", "spring.png"), ("c_t", "https://www.example.org/sale"),
                ("ca", "1")],
        BASE + [("c_n", "Banner"), ("c_p", "spring.png"), ("c_i", "click"), ("ca", "1")],
        BASE + [("idgoal", "3"), ("revenue", "10.5")],
        BASE + [("idgoal", "0"), ("ec_id", "A1001"), ("revenue", "42.5"), ("ec_st", "40"),
                ("ec_tx", "2.5"), ("ec_sh", "3"), ("ec_dt", "3"), ("ec_items", ITEMS)],
        BASE + [("idgoal", "0"), ("revenue", "19.75"), ("ec_items", ITEMS)],
        BASE + [("ping", "1")],
        BASE + [("ca", "1")],
        BASE + [("dimension1", "member"), ("dimension12", "de"), ("dimension1", "guest"),
                ("dimension0", "x"), ("dimension70000", "z")],
        BASE + [("new_visit", "1"), ("_idvc", "1"), ("_rcn", "newsletter"), ("_rck", "june"),
                ("lang", "fr-CH,fr;q=0.9"), ("ua", "python-requests/2.32.3")],
        BASE + [("bots", "1"), ("ua", "Mozilla/5.0 (compatible; Googlebot/2.1; "
                                     "+http://www.google.com/bot.html)")],
        # Matomo's PHP tracker, server side, with the token: the privileged parameters.
        BASE + [("token_auth", TOKEN), ("cip", "198.51.100.23"), ("cdt", "2025-06-14 10:00:00"),
                ("country", "de"), ("region", "BE"), ("city", "Berlin")],
        BASE + [("token_auth", TOKEN), ("cip", "2001:db8:1234:5678::1"), ("cdt", "1749900000"),
                ("cdo", "30")],
        BASE + [("token_auth", TOKEN), ("cip", "192.0.2.44")],
        BASE + [("cdt", "1749999000"), ("cdo", "-120")],
        # Regression: `abs` of the smallest i64 panicked (src/ingest/hit.rs, `timestamp`).
        BASE + [("cdo", "-9223372036854775808")],
        BASE + [("token_auth", "wrong"), ("cdt", "2020-01-01 00:00:00")],
        [("idsite", "2"), ("rec", "1"), ("url", "https://shop.example.net/cart?session=abc&x=1"),
         ("ua", "curl/8.5.0")],
        [("idsite", "1"), ("rec", "1"), ("url", "https://evil.example.com/")],
        [("idsite", "99"), ("rec", "1"), ("url", "https://www.example.org/")],
        [("idsite", "1"), ("rec", "1"), ("action_name", "noscript")],
        BASE + [("uadata", '{"platform":"Win\\"dows\\n","platformVersion":"15.0.0"}')],
        BASE + [("uadata", "not json")],
        BASE + [("res", "390x844"), ("h", "23"), ("m", "60"), ("s", "1")],
        BASE + [("urlref", "https://semalt.com/"), ("action_name", "spam")],
        BASE + [("url", "https://www.example.org/?email=ann%40example.com&utm_source=news")],
    ]
    seeds = [q(pairs) + "\n" for pairs in kinds]
    # A form POST: empty query, the hit in the body (the body overrides the query).
    seeds.append("\n" + q(BASE + [("action_name", "posted")]))
    seeds.append(q([("send_image", "0")]) + "\n" + q(BASE + [("send_image", "1")]))
    # The odd encodings of tally's own params tests.
    seeds += [
        "action_name=Hello+World%21&url=https%3A%2F%2Fexample.org%2F%3Fa%3D1%2B2&urlref=\n",
        "&&idsite=1&&rec&=x&e_c=%C3%BCber+%E2%82%AC&e_a=a%2Bb+c&e_n=%25\n",
        "e_c=100%&e_a=%zz&e_n=%4&search=a=b=c\n",
        "send%5Fimage=%30&idsite=1&rec=1&url=https://example.org/\n",
        "send_image=+0&idsite=1&rec=1&url=https://example.org/\n",
    ]
    raw = [s.encode() for s in seeds]
    raw.append(b"idsite=1&rec=1&send_image=0&url=https%3A%2F%2Fexample.org%2Fx"
               b"&action_name=bad%FFbyte&zzz=%C3\n")
    raw.append(b"action_name=a%FFb&unknown=%C3&e_c=x\xff\n")
    return raw


def bulk_seeds():
    importer = [f"?idsite=1&rec=1&url=https%3A%2F%2Fwww.example.org%2Fp{i}&cip=198.51.100.{i}"
                f"&cdt=2025-06-14+1{i}%3A00%3A00&ua=Mozilla%2F5.0&lang=en&token_auth={TOKEN}"
                for i in range(3)]
    mixed = [
        "?idsite=1&rec=1&url=https%3A%2F%2Fexample.org%2F1&action_name=b-string",
        {"idsite": 1, "rec": 1, "url": "https://example.org/2", "action_name": "b-object",
         "bw_bytes": 512, "e_c": "Cat", "e_a": "Act", "e_v": 2.5},
        "?idsite=99&rec=1&url=https%3A%2F%2Fexample.org%2F3&action_name=b-unknown-site",
        {"idsite": 1, "rec": 1, "url": "https://evil.example.net/", "action_name": "b-foreign"},
        42,
        "/matomo.php?idsite=1&rec=1&url=https%3A%2F%2Fexample.org%2F6&action_name=b-path",
        {"idsite": 1, "rec": 1, "url": "https://example.org/7", "cdt": 1749700000},
        None,
    ]
    bodies = [
        {"requests": importer, "token_auth": TOKEN},
        {"requests": mixed},
        {"requests": mixed, "token_auth": TOKEN},
        {"requests": mixed, "token_auth": "not-the-token"},
        {"requests": ["?" + q(PAGEVIEW)], "send_image": 0},
        {"requests": [{"idsite": 1, "rec": 1, "url": "https://example.org/barrier"}]},
        {"requests": ["a"], "send_image": "0"},
        {"requests": ["a"], "send_image": False},
        {"requests": ["", "?", {}, None, [1]]},
        {"requests": [{"idsite": "1", "rec": True, "url": "https://example.org/o", "idgoal": 0,
                       "ec_id": "A-7", "revenue": 12, "ec_items": [["s", "n", "c", 1.5, 2]],
                       "x": None}]},
        {"requests": []},
        {},
    ]
    seeds = [json.dumps(b).encode() for b in bodies]
    seeds += [b'{"requests": "x"', b'  {"requests":["?idsite=1"]}', b'{"requests": [1]}']
    # Plausible's /api/event bodies (its script's short names, the API's long ones).
    plausible = [
        {"n": "pageview", "u": "https://example.org/a?utm_source=news&token=s3cret#top",
         "d": "example.org", "r": "https://www.google.com/", "v": 25,
         "p": {"author": "ann@example.com", "section": "docs"}},
        {"name": "Signup", "url": "https://example.org/b", "domain": "example.org",
         "referrer": None, "props": {"plan": "pro", "seats": 3, "trial": True},
         "revenue": {"amount": "12.50", "currency": "EUR"}, "interactive": False},
        {"n": "Outbound Link: Click", "u": "https://example.org/c", "d": "example.org",
         "p": {"url": "https://partner.net/x?sessionid=abc"}},
        {"n": "File Download", "u": "https://example.org/d", "d": "example.org",
         "p": {"url": "https://example.org/files/report.pdf"}},
        {"n": "engagement", "u": "https://example.org/e", "d": "example.org", "sd": 64, "e": 5300},
        {"n": "engagement", "u": "https://example.org/e", "d": "example.org", "sd": "130", "e": "20"},
        {"n": "Purchase", "u": "https://example.org/f", "d": "example.org",
         "m": "{\"sku\":\"A-1\"}", "$": {"amount": 30, "currency": "USD"}},
        {"n": "pageview", "u": "https://blog.example.org/post", "d": "example.org,rollup.net"},
        {"n": 404, "u": "https://www.example.org/x", "r": None},
        {"u": "https://example.org/m1", "d": "example.org"},
        {"n": "pageview", "u": "https://shop.example.net/", "d": ""},
    ]
    seeds += [json.dumps(b).encode() for b in plausible]
    return seeds


def cookie_seeds():
    values = [
        "_pk_id.1.1fff=abc; matomo_ignore=ignore%3Dx", "a=1", "a=1; piwik_ignore=",
        "a=1; tally_ignorex=1", "a=b; tally_ignore=", "matomo_ignore=*", "matomo_ignored=1",
        "mtm_consent_removed=1", "no_stats=1", "piwik_ignore=1; tally_ignore=1", "tally_ignore=1",
        "x=1;tally_ignore=yes;y=2", "xpiwik_ignore=1", "tally_session=3q2+7w; theme=dark",
        "_pk_id.1.1fff=5c5f3b2a9d1e4f70.1749900000.; _pk_ses.1.1fff=1; _tly_id=5c5f3b2a9d1e4f70",
        "a=1\ntally_ignore=1", "\"quoted\"=\"v\"; =empty; noequals; tally_ignore",
        " tally_ignore = 1 ;", "tally_session=a; tally_session=b",
    ]
    return [v.encode() for v in values]


def client_hint_seeds():
    def line(*fields):
        return "\n".join(fields).encode()
    pixel = json.dumps({
        "brands": [{"brand": "Chromium", "version": "131"}, {"brand": "Not_A Brand", "version": "24"}],
        "fullVersionList": [{"brand": "Chromium", "version": "131.0.6778.85"},
                            {"brand": "Google Chrome", "version": "131.0.6778.85"}],
        "mobile": True, "model": "Pixel 8", "platform": "Android", "platformVersion": "14.0.0",
        "formFactors": ["Mobile"]}, separators=(",", ":"))
    android = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/131.0.0.0 Mobile Safari/537.36")
    mac = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/131.0.0.0 Safari/537.36")
    return [
        line(UADATA, "", "", "", "", "", "", CHROME),
        line(pixel, "", "", "", "", "", "", android),
        line('{"platform":"Win\\"dows\\n","platformVersion":"15.0.0"}', "", "", "", "", "", "", ""),
        line('{"platform":"macOS","platformVersion":"14.6.1"}', "", "", "", "", "", "", mac),
        line('{"platform":"macOS","platformVersion":"10.15.7"}', "", "", "", "", "", "", mac),
        line("not json", "", "", "", "", "", "", ""),
        line("[1,2]", "", "", "", "", "", "", ""),
        line("", '"Brave";v="131", "Chromium";v="131", "Not_A Brand";v="24"', '"Windows"',
             '"15.0.0"', "?0", "", "", CHROME),
        line("", '"Not A(Brand";v="8", "Chromium";v="132", "Microsoft Edge";v="132"', '"Windows"',
             '"10.0.0"', "?0", "", "", CHROME),
        line("", '"Not;A=Brand";v="99", "Opera";v="116", "Chromium";v="131"', "", "", "", "", "",
             CHROME),
        line("", '"Chromium";v="131"', "", "", "", '"Chromium";v="131.0.6778.86", '
             '"Google Chrome";v="131.0.6778.86", "Not_A Brand";v="24.0.0.0"', "", CHROME),
        line("", '"Chromium";v="131", "Google Chrome";v="131"', '"Android"', '"14.0.0"', "?1", "",
             '"SM-G991B"', android),
        line("", '"Chromium";v="131"', '"Android"', '"13"', "?0", "", '"SM-X700"', android),
        line("", '"Chromium";v="131"', '"Chrome OS"', '"16002.51.0"', "?0", "", "", CHROME),
        line("", '"Chromium";v="131"', '"Linux"', '""', "?0", "", "", CHROME),
        line("", '"Chromium";v="131"', '"Windows"', '"0.3.0"', "?0", "", "", CHROME),
        line("", '"Google Chrome";v="131"', '"macOS"', '"15.1.0"', "?0", "", "", mac),
        line("", '"Chromium";v="131"', '"Windows"', '"15.0.0"', "?0", "", "",
             "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
        line("", '"a\\"b;c,d";v=1, "x";v="2";q=1, ;;,,', '"', '"1', "?", '"";v=""', '"', CHROME),
    ]


def user_agent_seeds():
    src = open(os.path.join(ROOT, "src", "enrich", "device.rs"), encoding="utf-8").read()
    tests = src[src.index("#[cfg(test)]"):]
    uas = re.findall(r'^\s*"((?:Mozilla|[A-Za-z][^"]*?/)[^"]*)",\s*$', tests, re.M)
    extra = [
        "", "curl/8.5.0", "Wget/1.21.4", "Go-http-client/1.1", "okhttp/4.12.0",
        "Matomo/5.0 (PHP tracker)",
        "Mozilla/5.0 (Linux; Android 12; BRAVIA 4K VH2) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/108.0.0.0 Safari/537.36",
        "Mozilla/5.0 (PlayStation; PlayStation 5/6.50) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; KFTT Build/IML74K) AppleWebKit/534.30 "
        "(KHTML, like Gecko) Silk/3.68 like Chrome/39.0.2171.93 Safari/534.30",
        "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) "
        "Presto/2.5.25 Version/10.54",
    ]
    return [u.encode() for u in dict.fromkeys(uas + extra)]


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for s in seeds:
        with open(os.path.join(d, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
    print(f"{target}: {len(seeds)} seeds")


write("query_string", query_string_seeds())
write("bulk_json", bulk_seeds())
write("cookie_header", cookie_seeds())
write("client_hints", client_hint_seeds())
write("user_agent", user_agent_seeds())
