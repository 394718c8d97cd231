#!/usr/bin/env bash
# Build every libFuzzer target in agent/fuzz once, then run each for a bounded time; fail on any
# crash, timeout or out-of-memory input (kept under $DBHOST_FUZZ_CACHE/artifacts/TARGET/).
#
#   bash scripts/fuzz.sh                   # every target, DBHOST_FUZZ_SECONDS (10) each: CI
#   bash scripts/fuzz.sh 600 probe         # one target for 10 minutes
#   DBHOST_SKIP_FUZZ=1 bash scripts/fuzz.sh  # says it skipped, exits 0 (only when asked)
#
# Needs only the toolchain the rest of the build uses (stable is enough: no nightly, no cargo-fuzz,
# no AddressSanitizer, dbhost being safe Rust) and a C++ compiler for libFuzzer (libfuzzer-sys
# builds it). scripts/fuzz-rustc.sh instruments dbhost and the targets only; the dependencies
# build as plain release code. Where the fuzz build cannot run, this says so and fails: a
# skipped oracle is a missing test.
#
# The build and each target's growing corpus live in $DBHOST_FUZZ_CACHE (default
# /var/cache/dbhost-fuzz), outside the checkout; the hand-made seeds in agent/fuzz/corpus/TARGET
# are read as a second corpus. A crash reproduces with
#   $DBHOST_FUZZ_CACHE/target-*/x86_64-unknown-linux-gnu/release/TARGET ARTIFACT
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${DBHOST_SKIP_FUZZ:-0}" = 1 ]; then
  echo "fuzz: SKIPPED because DBHOST_SKIP_FUZZ=1 was given: no parser was fuzzed"
  exit 0
fi
cannot_run() {
  echo "fuzz: FUZZING COULD NOT RUN: $*" >&2
  echo "fuzz: (set DBHOST_SKIP_FUZZ=1 to skip this stage knowingly)" >&2
  exit 1
}

secs=${1:-${DBHOST_FUZZ_SECONDS:-10}}
shift || true
all=(md_superblock probe profile imds mysql_cnf pg_conf host_text)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

command -v cargo >/dev/null || cannot_run "no cargo on PATH"
command -v c++ >/dev/null || cannot_run "no C++ compiler (c++) to build libFuzzer (apt-get install g++)"
triple=$(rustc -vV | sed -n 's/^host: //p')
cache=${DBHOST_FUZZ_CACHE:-/var/cache/dbhost-fuzz}
# The wrapper's flags are not in cargo's fingerprint: a build directory per wrapper version.
tag=$(sha256sum scripts/fuzz-rustc.sh | cut -c1-12)
tdir="$cache/target-$tag"
mkdir -p "$cache"
find "$cache" -maxdepth 1 -name 'target-*' ! -name "target-$tag" -exec rm -rf {} +

# The fuzz workspace resolves from the main lock file, so it builds the dependency versions the
# product ships with (cargo adds only libFuzzer's few crates).
cp Cargo.lock agent/fuzz/Cargo.lock
t0=$SECONDS
if ! RUSTC_WRAPPER="$PWD/scripts/fuzz-rustc.sh" cargo build --quiet --release \
  --manifest-path agent/fuzz/Cargo.toml --target "$triple" --target-dir "$tdir" \
  $(printf -- '--bin %s ' "${targets[@]}"); then
  cannot_run "the fuzz targets did not build (see above)"
fi
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - t0)) s"

failed=()
for t in "${targets[@]}"; do
  bin="$tdir/$triple/release/$t"
  work="$cache/corpus/$t"
  art="$cache/artifacts/$t"
  log="$cache/logs/$t.log"
  mkdir -p "$work" "$art" "$(dirname "$log")"
  dict=()
  case $t in
    profile) dict=(-dict=agent/fuzz/dict/profile.dict) ;;
    imds) dict=(-dict=agent/fuzz/dict/imds.dict) ;;
    mysql_cnf | pg_conf) dict=(-dict=agent/fuzz/dict/cnf.dict) ;;
    host_text) dict=(-dict=agent/fuzz/dict/host_text.dict) ;;
  esac
  rc=0
  "$bin" "$work" "agent/fuzz/corpus/$t" "${dict[@]}" -max_total_time="$secs" \
    -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$art/" \
    >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  corpus=$(find "$work" -type f | wc -l)
  if [ "$rc" != 0 ]; then
    failed+=("$t")
    grep -a -m1 -A12 -E "panicked at|ERROR: libFuzzer" "$log" >&2 || tail -n 20 "$log" >&2
    echo "fuzz: $t FAILED (exit $rc) after ${runs:-?} inputs; input kept in $art/:" >&2
    ls -t "$art" | head -n 3 | sed "s|^|  $art/|" >&2
    echo "  reproduce: $bin <that file>   (log: $log)" >&2
  else
    printf 'fuzz: %-14s %9s inputs in %ss, corpus %s, no crash\n' "$t" "${runs:-?}" "$secs" "$corpus"
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: crashes in: ${failed[*]}" >&2; exit 1; }
