#!/usr/bin/env bash
# Installs what tally needs on a Debian machine, skipping what is already there.
#   deploy/install-deps.sh          ClickHouse server (to run the collector)
#   deploy/install-deps.sh --test   also Chromium + ChromeDriver, Firefox ESR and NSS's certutil
#                                   (browser tests), Node.js, ZooKeeper (the cluster test,
#                                   tests/cluster/, runs Debian's server class with java itself)
#                                   and deploy/check.sh's tools
set -euo pipefail

want=()
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || want+=(clickhouse-server clickhouse-client)
if [ "${1:-}" = "--test" ]; then
  command -v chromium >/dev/null 2>&1 || want+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || want+=(chromium-driver)
  command -v firefox-esr >/dev/null 2>&1 || want+=(firefox-esr)
  # certutil: the browser tests trust their throw-away CA in a fresh Firefox profile.
  command -v certutil >/dev/null 2>&1 || want+=(libnss3-tools)
  command -v node >/dev/null 2>&1 || want+=(nodejs npm)
  python3 -c 'import venv' >/dev/null 2>&1 || want+=(python3-venv)
  # Debian's `zookeeper` is the library and server jars (and a Java runtime), no service:
  # `zookeeperd` would be the system service, which the test does not want.
  { [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; } || want+=(zookeeper)
fi
# docker-compose, xmllint, nginx, caddy, promtool for deploy/check.sh (no daemon started).
if [ "${1:-}" = "--test" ]; then "$(dirname "$0")/check-tools.sh"; fi
if [ "${#want[@]}" -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "installing: ${want[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${want[@]}" >/dev/null
fi
