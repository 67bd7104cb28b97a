"""Runs tally's schema migrations and SQL on a current ClickHouse (26.x, embedded by chdb-core).

Production targets current ClickHouse while the test server here is Debian's 18.16, so every
SQL file tally ships must run on both. This applies `schema/*.sql` in order in a fresh chdb
session, then inserts a few rows and runs each report query under `src/` marked as such
(files `src/**/*.sql`), failing on the first error.

Usage: python tests/modern/check_schema.py   (needs `pip install chdb-core`)
"""

import glob
import os
import re
import sys
import tempfile

from chdb import session

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def statements(text):
    """Same split as src/store/migrate.rs: `;` at the end of a line, `--` lines dropped."""
    body = "".join(l + "\n" for l in text.splitlines() if not l.lstrip().startswith("--"))
    return [s.strip().rstrip(";").strip() for s in body.split(";\n") if s.strip()]


def main():
    with tempfile.TemporaryDirectory() as d:
        s = session.Session(d)
        print("engine:", s.query("SELECT version()", "TSV").data().strip())
        s.query("CREATE DATABASE IF NOT EXISTS tally")
        s.query("USE tally")
        files = sorted(glob.glob(os.path.join(ROOT, "schema", "*.sql")))
        assert files, "no schema files"
        count = 0
        for f in files:
            for stmt in statements(open(f).read()):
                s.query(stmt)
                count += 1
            print("applied", os.path.basename(f))
        # Apply twice: every statement must be idempotent (IF NOT EXISTS), as on 18.16.
        for f in files:
            for stmt in statements(open(f).read()):
                s.query(stmt)
        s.query(
            "INSERT INTO events (ts, site_id, kind, visitor_key, url, ip) VALUES "
            "(now(), 1, 'pageview', 1, 'https://example.org/', '203.0.0.0'), "
            "(now(), 1, 'ping', 1, 'https://example.org/', '203.0.0.0')"
        )
        n = s.query("SELECT count() FROM events", "TSV").data().strip()
        assert n == "2", n
        queries = sorted(glob.glob(os.path.join(ROOT, "src", "**", "*.sql"), recursive=True))
        for q in queries:
            sql = open(q).read()
            # Client-side `?` binds of the clickhouse crate: bind harmless literals.
            sql = re.sub(r"\?", "1", sql)
            s.query(sql, "TSV")
            print("query ok", os.path.relpath(q, ROOT))
        print(f"modern ClickHouse OK: {count} schema statements, {len(queries)} queries")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report any engine error as a failure
        print("modern ClickHouse check failed:", e, file=sys.stderr)
        sys.exit(1)
