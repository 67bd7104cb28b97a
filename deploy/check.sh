#!/usr/bin/env bash
# Static checks of everything under deploy/ (no Docker engine, no systemd as PID 1 needed):
#   compose files        docker-compose 1.29 `config -q` (schema and interpolation), and refused
#                        without the secrets of .env
#   systemd unit         systemd-analyze verify (ExecStart pointed at the tally binary built
#                        here), its command line parsed by that binary, and
#                        systemd-analyze security --offline with an exposure threshold
#   ClickHouse XML       xmllint --noout
#   nginx, Caddy         nginx -t (throw-away certificate, scratch prefix), caddy validate
#   Prometheus rules     promtool check rules, and every tally_* metric they use exists
#   Dockerfile           every COPY source exists and is not kept out by .dockerignore
#                        (hadolint is not installable here: GitHub downloads are blocked)
#   tally configs        the compose and cluster example configs load in the tally binary
# Tools: deploy/check-tools.sh (run by deploy/install-deps.sh --test). Fails on the first error.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:${TALLY_DEPLOY_TOOLS:-$HOME/.cache/tally/deploy-tools}/bin:/usr/sbin"
for tool in docker-compose systemd-analyze xmllint nginx caddy promtool openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "deploy/check.sh: $tool missing (run deploy/check-tools.sh)" >&2; exit 1; }
done
scratch="$(mktemp -d "${TMPDIR:-/tmp}/tally-deploy-check.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
step() { echo "-- deploy: $*"; }

step "compose files (docker-compose $(docker-compose version --short 2>/dev/null))"
cat > "$scratch/one.env" <<'ENV'
CLICKHOUSE_PASSWORD=check-only-not-a-secret
TALLY_PUBLIC_URL=https://analytics.example.org
ENV
cp "$scratch/one.env" "$scratch/cluster.env"
echo "INTERSERVER_PASSWORD=check-only-not-a-secret" >> "$scratch/cluster.env"
docker-compose --env-file "$scratch/one.env" -f deploy/docker-compose.yml config -q
docker-compose --env-file "$scratch/cluster.env" -f deploy/cluster/docker-compose.yml config -q
# The shipped .env examples carry no secret, so the compose files must refuse them.
for f in deploy/docker-compose.yml:deploy/.env.example deploy/cluster/docker-compose.yml:deploy/cluster/.env.example; do
  if docker-compose --env-file "${f#*:}" -f "${f%%:*}" config -q 2>/dev/null; then
    echo "deploy/check.sh: ${f%%:*} starts without a ClickHouse password" >&2; exit 1
  fi
done
# Every file a compose file mounts from the repository exists (tally.toml is the operator's copy).
for compose in deploy/docker-compose.yml deploy/cluster/docker-compose.yml; do
  dir="$(dirname "$compose")"
  for src in $(grep -oE '^\s+- \./[^:]+' "$compose" | sed 's/^ *- //' | sort -u); do
    case "$src" in ./tally.toml) [ "$compose" = deploy/docker-compose.yml ] && continue ;; esac
    [ -e "$dir/$src" ] || { echo "deploy/check.sh: $compose mounts $src, which does not exist" >&2; exit 1; }
  done
done

step "tally binary (for the unit's command line and the example configs)"
bin="${DEPLOY_CHECK_TALLY_BIN:-}"
if [ -z "$bin" ]; then
  cargo build --quiet --bin tally
  bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/tally"
fi
[ -x "$bin" ] || { echo "deploy/check.sh: no tally binary at $bin" >&2; exit 1; }

step "systemd unit"
unit=deploy/systemd/tally.service
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
case "$exec_start" in /usr/local/bin/tally\ *) ;; *) echo "deploy/check.sh: unexpected ExecStart: $exec_start" >&2; exit 1 ;; esac
# The unit names /usr/local/bin/tally, which a test machine does not have: verify a copy that
# differs only in that path, pointed at the binary built from this tree.
sed "s#^ExecStart=/usr/local/bin/tally #ExecStart=$bin #" "$unit" > "$scratch/tally.service"
# verify only warns about unknown keys or bad values: any output is a failure here.
if ! systemd-analyze verify "$scratch/tally.service" >"$scratch/verify.log" 2>&1 || [ -s "$scratch/verify.log" ]; then
  sed "s#$scratch/##" "$scratch/verify.log" >&2
  echo "deploy/check.sh: systemd-analyze verify complains about $unit" >&2; exit 1
fi
# Its arguments parse (clap prints the help and exits 0 only if they do).
# shellcheck disable=SC2086
"$bin" ${exec_start#/usr/local/bin/tally } --help >/dev/null
# Exposure 1.2 when written (deploy/README.md); fail if a change makes it worse than 2.0.
systemd-analyze security --offline=true --threshold=20 "$scratch/tally.service" | tail -n 1

step "ClickHouse and Keeper XML"
find deploy -name '*.xml' -print0 | xargs -0 xmllint --noout

step "nginx -t ($(nginx -v 2>&1))"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=analytics.example.org \
  -keyout "$scratch/key.pem" -out "$scratch/cert.pem" 2>/dev/null
mkdir -p "$scratch/nginx/logs" "$scratch/nginx/cache"
mime=/etc/nginx/mime.types
[ -f "$mime" ] || { echo 'types { application/javascript js; }' > "$scratch/mime.types"; mime="$scratch/mime.types"; }
sed -e "s#/etc/letsencrypt/live/analytics.example.org/fullchain.pem#$scratch/cert.pem#" \
    -e "s#/etc/letsencrypt/live/analytics.example.org/privkey.pem#$scratch/key.pem#" \
    -e "s#^pid .*#pid $scratch/nginx/nginx.pid;#" \
    -e "s#/var/log/nginx/error.log#$scratch/nginx/logs/error.log#" \
    -e "s#/var/cache/nginx/tally#$scratch/nginx/cache#" \
    -e "s#/etc/nginx/mime.types#$mime#" \
    deploy/reverse-proxy/nginx.conf > "$scratch/nginx/nginx.conf"
nginx -q -t -p "$scratch/nginx" -c "$scratch/nginx/nginx.conf" -g "error_log $scratch/nginx/logs/e.log;"
# The cluster's load balancer: its collectors resolve only inside compose, so by loopback here.
sed -e "s#collector[12]:8080#127.0.0.1:8080#" -e "s#^pid .*#pid $scratch/nginx/lb.pid;#" \
    deploy/cluster/lb.conf > "$scratch/nginx/lb.conf"
nginx -q -t -p "$scratch/nginx" -c "$scratch/nginx/lb.conf" -g "error_log $scratch/nginx/logs/e.log;"

step "caddy validate ($(caddy version | cut -d' ' -f1))"
XDG_DATA_HOME="$scratch/caddy" XDG_CONFIG_HOME="$scratch/caddy" \
  caddy validate --adapter caddyfile --config deploy/reverse-proxy/Caddyfile 2>"$scratch/caddy.log" \
  || { cat "$scratch/caddy.log" >&2; exit 1; }

step "Prometheus rules"
promtool check rules deploy/prometheus/alerts.yml >/dev/null
# Each tally_* series the rules read is one src/metrics.rs registers (prefix tally_, counters
# exposed with _total).
for m in $(grep -oE 'tally_[a-z_]+' deploy/prometheus/alerts.yml | sort -u); do
  name="${m#tally_}"; name="${name%_total}"
  grep -q "\"$name\"" src/metrics.rs || { echo "deploy/check.sh: alerts.yml uses $m, which tally does not export" >&2; exit 1; }
done

step "Dockerfile and .dockerignore"
for src in $(sed -n 's/^COPY \([^-][^ ]*\( [^ ]*\)*\) [^ ]*$/\1/p' deploy/Dockerfile); do
  [ -e "$src" ] || { echo "deploy/check.sh: Dockerfile copies $src, which does not exist" >&2; exit 1; }
  grep -qx "!$src/\?" .dockerignore || grep -qx "!$src" .dockerignore \
    || { echo "deploy/check.sh: Dockerfile copies $src, which .dockerignore keeps out" >&2; exit 1; }
done
grep -q '^USER ' deploy/Dockerfile && grep -q '^HEALTHCHECK ' deploy/Dockerfile

step "example tally configs load"
TALLY_CLICKHOUSE_URL=http://clickhouse:8123 TALLY_PUBLIC_URL=https://analytics.example.org \
TALLY_PRIVACY_TRUSTED_PROXIES=172.30.0.1/32 \
  "$bin" snippet --site 1 --config deploy/tally.compose.toml >/dev/null
TALLY_CLICKHOUSE_URL=http://ch1:8123 TALLY_PUBLIC_URL=https://analytics.example.org \
  "$bin" snippet --site 1 --config deploy/cluster/tally.toml >/dev/null
# The cluster schema renders (every migration has a cluster form).
TALLY_CLICKHOUSE_URL=http://ch1:8123 \
  "$bin" migrate --cluster tally --print --config deploy/cluster/tally.toml | grep -q "ENGINE = Distributed(tally, tally, events_local, visitor_key)"
echo "-- deploy: all checks passed"
