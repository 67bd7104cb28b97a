"""Runs tally's schema and every SQL statement tally sent during the tests on a current
ClickHouse (26.x, embedded by chdb-core).

Production targets current ClickHouse while the test server here is Debian's 18.16, so the SQL
tally sends must run on both. This

1. applies `schema/*.sql` in order in a fresh chdb session, twice (every statement must be
   repeatable, as `tally migrate` relies on after an interruption), and inserts a few rows;
2. with `--captured DIR`: reads the statements the test servers logged (see
   `src/store/embedded.rs`, `TALLYTEST_SQL_CAPTURE_DIR`; only those sent by tally's own client, the
   `clickhouse` crate) and runs each distinct one on chdb: the migrations' own statements are
   covered by step 1 (in order), other DDL runs again (so it must be idempotent),
   `INSERT .. FORMAT RowBinary` checked by its table and column list (the log holds no data),
   SELECTs and ALTERs as they are (the crate renders `?` binds on the client, so they are
   complete). The settings tally's client sent must exist on the current engine too, and a
   statement the test server itself rejected fails the check as well.

3. the statements the cluster test's servers logged (`tests/cluster/`, files `cluster-*.jsonl`),
   which carry `ON CLUSTER` and `Replicated*`/`Distributed` engines that chdb (no cluster, no
   ZooKeeper) cannot run as they are: each is parsed as sent (`EXPLAIN AST`), so syntax the
   current engine refuses is caught, then a normalised form (see `normalise_cluster`) runs in a
   chdb session of its own, in the order the statements were first sent.

It fails if any statement fails, and also if nothing was captured: a capture that silently finds
nothing would be a check that cannot fail.

Usage: python tests/modern/check_schema.py [--captured DIR]   (needs `pip install chdb-core`;
`tests/run-all.sh` runs it after `cargo test` with the directory it captured into)
"""

import argparse
import glob
import json
import os
import re
import sys
import tempfile
import time

from chdb import session

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Supervisors dump their server's query log as their test binary exits; the last ones may
# still be at it when `cargo test` returns.
PENDING_TIMEOUT_S = 120


def statements(text):
    """Same split as src/store/migrate.rs: `;` at the end of a line, `--` lines dropped."""
    body = "".join(l + "\n" for l in text.splitlines() if not l.lstrip().startswith("--"))
    return [s.strip().rstrip(";").strip() for s in body.split(";\n") if s.strip()]


def schema_statements():
    files = sorted(glob.glob(os.path.join(ROOT, "schema", "*.sql")))
    assert files, "no schema files"
    return [(os.path.basename(f), stmt) for f in files for stmt in statements(open(f).read())]


def apply_schema(s):
    """Applies the migrations in order, twice: a migration interrupted and run again (tally
    records it only after its last statement) must not fail, as on 18.16."""
    for name, stmt in schema_statements():
        try:
            s.query(stmt)
        except Exception as e:
            raise RuntimeError(f"{name}: {stmt}\n  -> {e}") from e
    for name, stmt in schema_statements():
        try:
            s.query(stmt)
        except Exception as e:
            # The migrator's rule (src/store/migrate.rs, `already_exists`): an `ADD COLUMN`
            # whose column exists was applied before the interruption.
            if " ADD COLUMN " in stmt and "already exists" in str(e):
                continue
            raise RuntimeError(f"{name} applied a second time: {stmt}\n  -> {e}") from e
    files = sorted({name for name, _ in schema_statements()})
    print("applied twice:", ", ".join(files))
    return len(schema_statements())


def read_captured(directory):
    """Distinct captured statements -> (setting names sent with them, errors of the test
    server when it rejected them)."""
    deadline = time.monotonic() + PENDING_TIMEOUT_S
    while glob.glob(os.path.join(directory, "*.pending")) and time.monotonic() < deadline:
        time.sleep(0.5)
    pending = sorted(glob.glob(os.path.join(directory, "*.pending")))
    if pending:
        errors = ""
        for p in pending:
            err = p[: -len(".pending")] + ".err"
            if os.path.exists(err):
                errors += f"\n{os.path.basename(err)}: {open(err).read().strip()}"
        raise SystemExit(
            f"modern ClickHouse check failed: {len(pending)} query log dump(s) did not complete "
            f"in {directory}{errors}"
        )
    files = sorted(glob.glob(os.path.join(directory, "*.jsonl")))
    # The cluster test's nodes name their files `cluster-<replica>-<pid>.jsonl`
    # (tests/cluster/harness.rs).
    cluster_files = [f for f in files if os.path.basename(f).startswith(CLUSTER_PREFIX)]
    single_files = [f for f in files if f not in cluster_files]
    single, cluster, first = {}, {}, {}
    for group, into in ((single_files, single), (cluster_files, cluster)):
        for f in group:
            for line in open(f):
                if not line.strip():
                    continue
                row = json.loads(line)
                sql = canonical(row["query"])
                settings, errors = into.setdefault(sql, (set(), set()))
                settings.update(row.get("settings", []))
                errors.update(e.strip() for e in row.get("errors", []))
                if "first" in row and into is cluster:
                    first[sql] = min(first.get(sql, row["first"]), row["first"])
    print(
        f"captured: {len(single_files)} server(s), {len(single)} distinct statement(s); "
        f"cluster: {len(cluster_files)} node run(s), {len(cluster)} distinct statement(s)"
    )
    return single, cluster, first


CLUSTER_PREFIX = "cluster-"


def canonical(sql):
    """One statement per shape: every test creates a database of its own name, and every
    rollup run staging tables of its own (`rollup_<time>_<random>_<table>`)."""
    sql = sql.strip().rstrip(";").strip()
    sql = re.sub(r"\brollup_\d+_[0-9a-f]+_(\w+)", r"rollup_check_\1", sql)
    return re.sub(
        r"^CREATE DATABASE IF NOT EXISTS\s+`?\w+`?$", "CREATE DATABASE IF NOT EXISTS tally", sql
    )


INSERT = re.compile(
    r"^INSERT\s+INTO\s+(?P<table>[`\w.]+)\s*\((?P<cols>[^)]*)\)\s*FORMAT\s+(?P<fmt>\w+)\s*$",
    re.IGNORECASE | re.DOTALL,
)


def kind(sql):
    word = sql.split(None, 1)[0].upper()
    if word == "DROP" and "rollup_check_" in sql:
        # A rollup drops its staging tables after it swapped them in: last.
        return "cleanup"
    if word in ("CREATE", "DROP", "RENAME"):
        return "ddl"
    if word == "INSERT":
        return "insert"
    if word == "ALTER":
        return "alter"
    return "select" if word in ("SELECT", "WITH", "DESCRIBE", "SHOW", "EXISTS") else "other"


def as_runnable(sql):
    """The statement to run on chdb: an INSERT without its data becomes an INSERT of nothing
    from the same columns, which still checks that the table and every column exist and can be
    inserted into."""
    if kind(sql) != "insert":
        return sql
    if re.match(r"^INSERT\s+INTO\s+[`\w.]+(\s*\([^)]*\))?\s+SELECT\b", sql, re.IGNORECASE | re.DOTALL):
        # INSERT .. SELECT (the rollup's): complete as it is.
        return sql
    m = INSERT.match(sql)
    if not m:
        raise ValueError("INSERT neither `INSERT INTO t(cols) FORMAT F` nor `INSERT .. SELECT`")
    return f"INSERT INTO {m['table']} ({m['cols']}) SELECT {m['cols']} FROM {m['table']} WHERE 0"


ON_CLUSTER = re.compile(r"\s+ON\s+CLUSTER\s+(`[^`]*`|'[^']*'|\"[^\"]*\"|\w+)", re.IGNORECASE)
# `ReplicatedX('path', 'replica'[, a...])`: the two ZooKeeper arguments go, the rest stays.
REPLICATED_ARGS = re.compile(
    r"\bReplicated(\w*MergeTree)\s*\(\s*'(?:[^'\\]|\\.)*'\s*,\s*'(?:[^'\\]|\\.)*'\s*,?\s*"
)
REPLICATED_BARE = re.compile(r"\bReplicated(\w*MergeTree)\b")
DISTRIBUTED_AS = re.compile(
    r"^(CREATE\s+TABLE\s+.*?\bAS\s+[`\w.]+)\s+ENGINE\s*=\s*Distributed\s*\(.*\)\s*$",
    re.IGNORECASE | re.DOTALL,
)
DISTRIBUTED = re.compile(r"ENGINE\s*=\s*Distributed\s*\([^)]*\)", re.IGNORECASE)


def normalise_cluster(sql):
    """The single-server form of a cluster statement, or None for one that is only parsed
    (`SYSTEM ..`, e.g. `SYSTEM SYNC REPLICA`): without `ON CLUSTER name`;
    `ReplicatedX('path', 'replica'[, a])` as `X([a])`; a Distributed table made `AS` a local
    one as a plain copy of it (`CREATE TABLE x AS y_local`), one with its own columns as a
    Memory table. chdb is then one node holding every shard and replica."""
    if re.match(r"\s*SYSTEM\b", sql, re.IGNORECASE):
        return None
    out = ON_CLUSTER.sub("", sql, count=1)
    out = REPLICATED_ARGS.sub(lambda m: f"{m[1]}(", out)
    out = REPLICATED_BARE.sub(r"\1", out)
    m = DISTRIBUTED_AS.match(out)
    return m[1] if m else DISTRIBUTED.sub("ENGINE = Memory", out)


def cluster_order(sql, first):
    """Replay order: when first sent (seconds), then, for statements of the same second,
    databases, tables with an engine, tables made `AS` another, column changes, inserts,
    reads, the rest, partition changes; every DROP last (a dropped and recreated table's
    CREATE runs once, at its first sending)."""
    word = sql.split(None, 1)[0].upper()
    if word == "DROP":
        return (1, 0, 0, sql)
    k = kind(sql)
    if re.match(r"CREATE\s+DATABASE\b", sql, re.IGNORECASE):
        phase = 0
    elif k == "ddl":
        phase = 2 if re.search(r"\bAS\s+[`\w.]+\s*$", normalise_cluster(sql) or "") else 1
    elif k == "alter" and re.search(r"\b(ADD|MODIFY|DROP|RENAME)\s+COLUMN\b", sql, re.IGNORECASE):
        phase = 3
    else:
        phase = {"insert": 4, "select": 5, "other": 6, "alter": 7, "cleanup": 8}[k]
    return (0, first.get(sql, 0), phase, sql)


CLUSTER_SCHEMA_PREFIX = "schema-of-cluster-"


def cluster_schemas(directory):
    """The cluster schemas the cluster test wrote (`schema-of-cluster-<db>.sql`: every
    statement `tally migrate --cluster` sends, in order; `store::migrate::all_statements`):
    [(database, [statement])]."""
    out = []
    for f in sorted(glob.glob(os.path.join(directory, CLUSTER_SCHEMA_PREFIX + "*.sql"))):
        db = os.path.basename(f)[len(CLUSTER_SCHEMA_PREFIX):-len(".sql")]
        out.append((db, statements(open(f).read())))
    return out


def apply_cluster_schema(s, schemas, failures):
    """Applies each cluster schema, normalised, in tally's own order, twice (as `tally migrate`
    may run it again after an interruption), and makes its database the session's current
    one, as tally's client names it. Returns the canonical statements applied, which the
    replay then skips."""
    applied = set()
    for db, stmts in schemas:
        # The migrations' own unqualified statements (INSERT .. SELECT) run in tally's database,
        # as tally's client names it.
        s.query(f"CREATE DATABASE IF NOT EXISTS {db}")
        s.query(f"USE {db}")
        for round_ in (1, 2):
            for sql in stmts:
                normalised = normalise_cluster(sql)
                applied.add(canonical(sql))
                if normalised is None:
                    continue
                try:
                    s.query(normalised, "TSV")
                except Exception as e:  # noqa: BLE001 - every engine error is a finding
                    # The migrator's rule, as in `apply_schema`: an `ADD COLUMN` whose column
                    # exists was applied before the interruption.
                    if round_ == 2 and " ADD COLUMN " in sql and "already exists" in str(e):
                        continue
                    failures.append(
                        (sql, f"cluster schema, round {round_}, normalised as: {normalised}\n  -> {str(e).strip()}")
                    )
    return applied


def check_cluster(cluster, first, failures, schemas=()):
    """Parses every cluster statement as sent and runs its normalised form in a chdb session
    of its own; failures are appended to `failures`. The cluster schemas are applied first, in
    order; the other statements are replayed after them. Returns counts for the summary."""
    with tempfile.TemporaryDirectory() as d:
        s = session.Session(d)
        s.query("SET allow_replace_partition_from_empty_source = 1")
        from_schema = apply_cluster_schema(s, schemas, failures)
        parsed = 0
        for sql in sorted(cluster):
            try:
                s.query(f"EXPLAIN AST {sql}", "TSV")
                parsed += 1
            except Exception as e:  # noqa: BLE001 - every engine error is a finding
                failures.append((sql, f"does not parse on the current engine: {str(e).strip()}"))
        ordered = [
            (sql, normalise_cluster(sql))
            for sql in sorted(cluster, key=lambda q: cluster_order(q, first))
        ]
        ordered = [(sql, n) for sql, n in ordered if n is not None and sql not in from_schema]
        drops = [(sql, n) for sql, n in ordered if cluster_order(sql, first)[0] == 1]
        pending = [(sql, n) for sql, n in ordered if cluster_order(sql, first)[0] == 0]
        ran, errors = 0, {}

        def run(sql, normalised):
            try:
                s.query(as_runnable(normalised), "TSV")
                errors.pop(sql, None)
                return True
            except Exception as e:  # noqa: BLE001 - every engine error is a finding
                # The first error: a retry's may only echo an earlier failure.
                errors.setdefault(sql, f"normalised as: {normalised}\n  -> {str(e).strip()}")
                return False

        # Passes until nothing more runs: statements sent in the same second may have been
        # replayed before one they depend on. The DROPs after all of them.
        while pending:
            left = [(sql, n) for sql, n in pending if not run(sql, n)]
            ran += len(pending) - len(left)
            if len(left) == len(pending):
                break
            pending = left
        ran += sum(run(sql, n) for sql, n in drops)
        failures.extend(errors.items())
        s.close()
    return parsed, ran


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--captured", help="directory with the statements the test servers logged")
    args = ap.parse_args()
    captured, cluster, first = read_captured(args.captured) if args.captured else (None, {}, {})
    if captured is not None and not captured and not cluster:
        raise SystemExit(
            f"modern ClickHouse check failed: no statement captured in {args.captured} "
            "(was TALLYTEST_SQL_CAPTURE_DIR set for cargo test?)"
        )

    with tempfile.TemporaryDirectory() as d:
        s = session.Session(d)
        print("engine:", s.query("SELECT version()", "TSV").data().strip())
        s.query("CREATE DATABASE IF NOT EXISTS tally")
        s.query("USE tally")
        count = apply_schema(s)
        s.query(
            "INSERT INTO events (ts, site_id, kind, visitor_key, url, ip) VALUES "
            "(now(), 1, 'pageview', 1, 'https://example.org/', '203.0.0.0'), "
            "(now(), 1, 'ping', 1, 'https://example.org/', '203.0.0.0')"
        )
        n = s.query("SELECT count() FROM events", "TSV").data().strip()
        assert n == "2", n
        if captured is None:
            print(f"modern ClickHouse OK: {count} schema statements (no captured SQL given)")
            return

        # The migrations' own statements were applied above, in their order (run alone, a step
        # such as `RENAME TABLE events TO ..` depends on the steps before it).
        schema = {canonical(stmt) for _, stmt in schema_statements()}
        from_schema = [q for q in captured if q in schema]
        # DDL first (tables exist for what follows), ALTERs (dropping partitions) last.
        order = {"ddl": 0, "insert": 1, "select": 2, "other": 3, "alter": 4, "cleanup": 5}
        # Out of their run, the rollup's swaps may find a staging day empty here; tally itself
        # never sends `REPLACE PARTITION` from an empty one (it drops the day instead), which
        # current ClickHouse refuses unless told otherwise.
        s.query("SET allow_replace_partition_from_empty_source = 1")
        failures = []
        ran = {k: 0 for k in order}
        for sql in sorted(
            (q for q in captured if q not in schema), key=lambda q: (order[kind(q)], q)
        ):
            try:
                s.query(as_runnable(sql), "TSV")
                ran[kind(sql)] += 1
            except Exception as e:  # noqa: BLE001 - every engine error is a finding
                failures.append((sql, str(e).strip()))

        # What the test server (18.16) rejected is a fault too, though tally may only log it;
        # except in a database whose name says a test broke it on purpose (`provoked_*`, e.g.
        # tests/retention.rs drops a table to make a rollup fail): the statement itself still
        # runs on the current engine above.
        provoked = 0
        for sql, (_, errors) in sorted(captured.items()) + sorted(cluster.items()):
            for err in sorted(errors):
                if re.search(r"\bprovoked_\w+\.", err):
                    provoked += 1
                    continue
                # The migrator repeats an interrupted ADD COLUMN migration and takes "already
                # exists" as done (src/store/migrate.rs; tests/migrations.rs provokes it).
                if re.match(r"(?is)\s*ALTER TABLE .* ADD COLUMN ", sql) and "already exists" in err:
                    provoked += 1
                    continue
                failures.append((sql, f"rejected by the test server as well: {err}"))
        if provoked:
            print(f"expected: {provoked} rejection(s) provoked on purpose by tests")

        names = sorted(
            set().union(*(settings for settings, _ in [*captured.values(), *cluster.values()]))
        )
        known = set()
        if names:
            listed = ", ".join("'" + n.replace("'", "\\'") + "'" for n in names)
            known = set(
                s.query(f"SELECT name FROM system.settings WHERE name IN ({listed})", "TSV")
                .data()
                .split()
            )
        for name in names:
            if name not in known:
                failures.append((f"setting {name}", "unknown to this ClickHouse"))

        summary = ", ".join(
            [f"{len(from_schema)} schema migration steps (applied above)"]
            + [f"{v} {k}" for k, v in ran.items() if v]
        )
        s.close()

    cluster_summary = ""
    if cluster:
        parsed, replayed = check_cluster(
            cluster, first, failures, cluster_schemas(args.captured)
        )
        cluster_summary = (
            f"; cluster: {len(cluster)} distinct statements, {parsed} parsed as sent, "
            f"{replayed} ran normalised"
        )
    for sql, err in failures:
        print(f"FAILED:\n  {sql}\n  -> {err}\n", file=sys.stderr)
    if failures:
        raise SystemExit(
            f"modern ClickHouse check failed: {len(failures)} of "
            f"{len(captured) + len(cluster)} captured statements/settings rejected"
        )
    print(
        f"modern ClickHouse OK: {count} schema statements; {len(captured)} distinct "
        f"captured statements ran ({summary}); {len(names)} settings known{cluster_summary}"
    )


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - report any engine error as a failure
        print("modern ClickHouse check failed:", e, file=sys.stderr)
        sys.exit(1)
