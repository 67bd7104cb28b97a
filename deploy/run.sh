#!/usr/bin/env bash
# Sets up what is missing and starts the collector. Without arguments it runs the demo
# configuration (site 1 on localhost) with an embedded ClickHouse under ./var/clickhouse;
# pass `--config tally.toml` for a real one.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
exec cargo run --release -- serve "$@"
