#!/usr/bin/env bash
# Run ALL tests: formatting, lints, unit tests (no root, fake host trees), the Vagrantfile syntax
# check, then the whole VM suite (scripts/vm-test.sh: builds the static binary and the cached
# guest image, boots one QEMU guest per scenario). This is the README's test command and what
# .ci/run calls. Run as root on Debian/Ubuntu: missing apt packages are installed.
# Time on the 2-core project machine without KVM: see README.md ("Run all tests").
# DBHOST_SKIP_VM=1 stops after the unit tests (for machines that cannot run guests).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
last=$SECONDS
times=()
stage() {
  local now=$SECONDS
  [ -n "${cur:-}" ] && times+=("$(printf '%-28s %5ss' "$cur" "$((now - last))")")
  cur=$1; last=$now
  [ -n "$1" ] && printf '\n== %s (t=%ss)\n' "$1" "$((now - t0))"
  return 0
}
summary() {
  stage ""
  printf '\n== stage times\n'
  printf '  %s\n' "${times[@]}"
  printf '  %-28s %5ss\n' total "$((SECONDS - t0))"
}
trap summary EXIT

apt_install() { # PACKAGE... (only when root and missing)
  [ "$(id -u)" = 0 ] || { echo "test-all: missing $*; install it or run as root" >&2; return 1; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy"
cargo clippy --all-targets -- -D warnings
stage "cargo test"
cargo test --all 2>&1 | tee /tmp/dbhost-unit.log

stage "static binary (build, runs without libc, same results on every fixture)"
static_bin=$(bash scripts/build-static.sh | tail -n1)
bash scripts/check-static.sh "$static_bin"

stage "benchmark: relocation copier vs plain copy (host disk; prints the ratio)"
bash scripts/bench-copy.sh "${DBHOST_BENCH_COPY_MB:-512}"

stage "fuzz: md superblock parser (bounded)"
# cargo-fuzz needs a nightly toolchain; where there is none, the stable proptest
# `decode_never_panics` (run by cargo test above) covers random input. Longer runs:
# agent/fuzz/Cargo.toml. The build is cached outside the checkout (it is the slow part).
if [ "${DBHOST_SKIP_FUZZ:-0}" != 1 ] && cargo +nightly --version >/dev/null 2>&1; then
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  fuzz_cache=${DBHOST_FUZZ_CACHE:-/var/cache/dbhost-fuzz}
  mkdir -p "$fuzz_cache"
  (cd agent && cargo +nightly fuzz run --target-dir "$fuzz_cache/target" md_superblock -- \
    -max_total_time="${DBHOST_FUZZ_SECONDS:-60}" -rss_limit_mb=1024 2>&1 | tail -n 5)
else
  echo "fuzz: skipped (no nightly toolchain, or DBHOST_SKIP_FUZZ=1)"
fi

stage "Vagrantfile syntax"
command -v ruby >/dev/null || apt_install ruby
ruby -c Vagrantfile
if command -v vagrant >/dev/null; then
  vagrant validate --ignore-provider
fi

if [ "${DBHOST_SKIP_VM:-0}" = 1 ]; then
  echo "DBHOST_SKIP_VM=1: skipping the VM suite"
  exit 0
fi
stage "VM suite (scripts/vm-test.sh)"
DBHOST_BIN="$static_bin" bash scripts/vm-test.sh
