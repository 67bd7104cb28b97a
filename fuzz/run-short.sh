#!/usr/bin/env bash
# Short runs of every fuzz target, for CI (tests/run-all.sh): installs cargo-fuzz if missing,
# builds all targets once, runs each for FUZZ_SECONDS (default 20) from its committed seed
# corpus, and fails on the first crash, timeout or out-of-memory (the input is left in
# fuzz/artifacts/<target>/ and cargo-fuzz prints how to reproduce it).
#
# What a run adds to the corpus goes to a temporary directory, never into fuzz/corpus/: the
# committed seeds are only read. Longer local runs: FUZZ_SECONDS=300 fuzz/run-short.sh, or one
# target by name (fuzz/run-short.sh user_agent). See docs/fuzzing.md.
#
# Toolchain: stable Rust is enough. Without a sanitizer (`-s none`) every flag cargo-fuzz
# passes is a stable codegen option; the code fuzzed is safe Rust, which AddressSanitizer
# would mostly not add to, at twice the build time. `FUZZ_SANITIZER=address` works on stable
# too: `RUSTC_BOOTSTRAP=1` is then set, since it needs `-Zsanitizer`.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-20}"
sanitizer="${FUZZ_SANITIZER:-none}"
# 16 codegen units instead of cargo-fuzz's 1, as its help suggests for faster builds at the
# cost of somewhat slower runs: the build (the whole collector, instrumented) is most of the
# step's time, the runs are short.
build_flags=(-s "$sanitizer" --codegen-units 16)
[ "$sanitizer" = none ] || export RUSTC_BOOTSTRAP=1

# libFuzzer itself is C++, built by libfuzzer-sys.
if ! command -v c++ >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq g++ >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

started=$SECONDS
cargo fuzz build "${build_flags[@]}"
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - started)) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/tally-fuzz.XXXXXX")"
trap 'rm -rf "$work" "${TMPDIR:-/tmp}"/tally-fuzz-spool-*' EXIT

for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  dict=()
  [ -f "dict/$target.dict" ] && dict=("-dict=dict/$target.dict")
  echo "fuzz: $target for ${seconds} s"
  # The temporary directory comes first: libFuzzer writes new inputs to the first corpus
  # directory only and reads the others.
  cargo fuzz run "${build_flags[@]}" "$target" "$work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    "${dict[@]}" 2>"$work/$target.log" || {
    tail -n 60 "$work/$target.log"
    echo "fuzz: $target FAILED (input in fuzz/artifacts/$target/)" >&2
    exit 1
  }
  grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^stat::new_units_added' \
    "$work/$target.log" | tr '\n' ' '
  echo
done
echo "fuzz: all ${#targets[@]} targets ran ${seconds} s each without a crash ($((SECONDS - started)) s in all)"
