#!/usr/bin/env bash
# Installs the tools deploy/check.sh uses, without starting any daemon:
#   docker-compose (Debian's 1.29: validates compose files without a Docker engine) and
#   xmllint from apt; nginx, caddy and promtool unpacked from their Debian packages into
#   ~/.cache/tally/deploy-tools (installing the packages would start nginx, Caddy and a
#   Prometheus server on this machine).
# Called by deploy/install-deps.sh --test.
set -euo pipefail

want=()
command -v docker-compose >/dev/null 2>&1 || want+=(docker-compose)
command -v xmllint >/dev/null 2>&1 || want+=(libxml2-utils)
command -v openssl >/dev/null 2>&1 || want+=(openssl)
if [ "${#want[@]}" -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "installing: ${want[*]}" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi

tools="${TALLY_DEPLOY_TOOLS:-$HOME/.cache/tally/deploy-tools}"
mkdir -p "$tools/bin"
unpack() { # package, path of the binary inside it
  local pkg="$1" path="$2" name
  name="$(basename "$path")"
  command -v "$name" >/dev/null 2>&1 && return 0
  [ -x "$tools/bin/$name" ] && return 0
  local dl
  dl="$(mktemp -d)"; chmod 755 "$dl"
  (cd "$dl" && apt-get download -qq "$pkg" >/dev/null 2>&1)
  dpkg-deb -x "$dl"/*.deb "$dl/root"
  install -m 0755 "$dl/root$path" "$tools/bin/$name"
  rm -rf "$dl"
}
unpack nginx /usr/sbin/nginx
unpack caddy /usr/bin/caddy
unpack prometheus /usr/bin/promtool
