#!/usr/bin/env bash
# Regenerates the embedded lists in this folder from their registry packages.
# Run by hand when you want fresher lists; the outputs are committed.
#
#   matomo-searchengine-and-social-list (Debian, CC0-1.0)  -> search_engines.json, socials.json
#   matomo-referrer-spam-list           (Debian, public domain) -> spammers.txt
#   ua-parser crate's bundled uap-core  (crates.io, Apache-2.0) -> uap_regexes.json
#
# The YAML files are converted to compact JSON so the crate needs only serde_json
# (which the pipeline already uses) instead of a YAML parser.
# Needs: apt-get (Debian), python3 with PyYAML, cargo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Debian stable may lag; trixie carries the packages. A private apt state dir
# keeps the system's sources untouched.
echo "deb http://deb.debian.org/debian trixie main" > "$work/sources.list"
mkdir -p "$work/lists/partial"
apt_opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$work/lists")
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$work" && apt-get "${apt_opts[@]}" download matomo-searchengine-and-social-list matomo-referrer-spam-list)
for d in "$work"/*.deb; do dpkg-deb -x "$d" "$work/x"; done
base="$work/x/usr/share/php/matomo"
cp "$base/referrer-spam-list/spammers.txt" "$here/spammers.txt"

# ua-parser's crate tarball ships the uap-core regexes it was tested with.
uap_dir="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ua-parser-0.2.*/uap-core 2>/dev/null | sort -V | tail -1)"
if [ -z "$uap_dir" ]; then
  (cd "$here/../../.." && cargo fetch >/dev/null)
  uap_dir="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/ua-parser-0.2.*/uap-core | sort -V | tail -1)"
fi

python3 - "$base/searchengine-and-social-list" "$uap_dir" "$here" <<'PY'
import json, sys, yaml
src, uap, out = sys.argv[1], sys.argv[2], sys.argv[3]
def dump(obj, name):
    with open(f"{out}/{name}", "w") as f:
        json.dump(obj, f, separators=(",", ":"), ensure_ascii=False, sort_keys=False)
        f.write("\n")
dump(yaml.safe_load(open(f"{src}/SearchEngines.yml")), "search_engines.json")
dump(yaml.safe_load(open(f"{src}/Socials.yml")), "socials.json")
dump(yaml.safe_load(open(f"{uap}/regexes.yaml")), "uap_regexes.json")
PY
echo "updated: $(ls "$here")"
