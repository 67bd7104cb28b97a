"""Runs the rollup's visits statement on a current ClickHouse (26.x, embedded by chdb-core) over
the raw events of `tests/fixtures/rollup_hosts.jsonl` and compares the visits' host columns
with `tests/fixtures/rollup_hosts.tsv`, the answer `tests/rollup_visits.rs`
(`hosts_are_the_urls_hosts`) pins on the 18.16 test server.

`check_schema.py` only checks that tally's statements *run* on the current engine; this checks
that one gives the same *values*. ClickHouse's `domain()` gave other hosts on 26 than on 18.16
(empty for `localhost`, `a~b.example`, `user@host`, ...), so 258 of 66,653 breakdown rows of the
reports bench differed between the two; the statement now cuts hosts itself (src/rollup/sql.rs,
`VISITS_SELECT`).

The statement is read from src/rollup/sql.rs and its binds are rendered as the `clickhouse`
crate renders them (`?` a bind, `??` a literal `?`). Fails if the statement cannot be found,
if its number of binds changed, or if any value differs.

Usage: python tests/modern/check_rollup.py   (needs `pip install chdb-core`)
"""

import os
import re
import sys
import tempfile

from chdb import session

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_schema import ROOT, apply_schema  # noqa: E402

# As in tests/rollup_visits.rs: site 1 (UTC), 2026-11-23, a 30-minute visit timeout.
DAY = "2026-11-23"
TZ = "UTC"
TIMEOUT = 1800
START = 1795392000  # 2026-11-23 00:00:00 UTC
END = START + 86400

# The same as `HOSTS_QUERY` in tests/rollup_visits.rs.
HOSTS_QUERY = (
    "SELECT visitor_key, entry_hostname, exit_hostname, arraySort(pv_hosts), "
    "channel, source, referrer_host FROM visits ORDER BY visitor_key"
)


def visits_select():
    """`VISITS_SELECT` of src/rollup/sql.rs."""
    src = open(os.path.join(ROOT, "src", "rollup", "sql.rs")).read()
    m = re.search(r'pub const VISITS_SELECT: &str = r#"(.*?)"#;', src, re.S)
    if not m:
        raise SystemExit("check_rollup: VISITS_SELECT not found in src/rollup/sql.rs")
    return m.group(1)


def literal(v):
    if isinstance(v, int):
        return str(v)
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(sql, binds):
    """Binds rendered into `sql` like the crate does: `??` is a `?`, each other `?` a bind."""
    out, rest = [], list(binds)
    for part in re.split(r"(\?\?|\?)", sql):
        if part == "??":
            out.append("?")
        elif part == "?":
            if not rest:
                raise SystemExit("check_rollup: VISITS_SELECT has more binds than expected")
            out.append(literal(rest.pop(0)))
        else:
            out.append(part)
    if rest:
        raise SystemExit("check_rollup: VISITS_SELECT has fewer binds than expected")
    return "".join(out)


def main():
    # Binds in the order VISITS_SELECT documents (and src/rollup/mod.rs sends them).
    sql = render(visits_select(), [DAY, TZ, TIMEOUT, TZ, 1, START, END])
    events = open(os.path.join(ROOT, "tests", "fixtures", "rollup_hosts.jsonl")).read()
    want = open(os.path.join(ROOT, "tests", "fixtures", "rollup_hosts.tsv")).read().rstrip("\n")
    with tempfile.TemporaryDirectory() as d:
        s = session.Session(d)
        print("engine:", s.query("SELECT version()", "TSV").data().strip())
        s.query("CREATE DATABASE IF NOT EXISTS tally")
        s.query("USE tally")
        apply_schema(s)
        s.query("INSERT INTO events FORMAT JSONEachRow\n" + events)
        s.query("INSERT INTO visits " + sql)
        got = s.query(HOSTS_QUERY, "TSV").data().rstrip("\n")
    if got != want:
        print(f"want:\n{want}\n\ngot:\n{got}", file=sys.stderr)
        raise SystemExit("modern ClickHouse check failed: the visits' hosts differ from 18.16's")
    print(f"modern ClickHouse OK: the visits' hosts are 18.16's ({len(want.splitlines())} visits)")


if __name__ == "__main__":
    main()
