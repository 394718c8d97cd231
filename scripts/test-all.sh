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

stage "host tools and test oracles"
# Everything a test needs is installed here, never assumed: a machine where a tool was installed
# by hand would hide a missing step. mdadm is the independent oracle for md superblocks (cargo
# test and the md scenarios); with DBHOST_REQUIRE_ORACLES=1 a test whose oracle is missing fails
# instead of skipping.
need=()
command -v mdadm >/dev/null || need+=(mdadm)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
export DBHOST_REQUIRE_ORACLES=1

stage "object-store servers for the backup tests (Azurite, moto)"
# Installed under /var/cache/dbhost-backup-servers (pinned versions, see the script), started on
# the host's loopback for cargo test (agent/tests/backup_servers.rs) and the VM suite's backup
# scenarios, stopped when this script ends. Azurite needs Node.js and npm (on the machine).
command -v npm >/dev/null || { echo "test-all: npm is missing (Azurite is an npm package)" >&2; exit 1; }
srv=$(mktemp -d /tmp/dbhost-backup-servers.XXXXXX)
trap 'python3 scripts/backup-servers.py stop "$srv"; rm -rf "$srv"; summary' EXIT
eval "$(python3 scripts/backup-servers.py start "$srv")"
python3 scripts/backup-servers.py selftest "$srv/selftest"

stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy"
cargo clippy --all-targets -- -D warnings
stage "cargo test"
cargo test --all 2>&1 | tee /tmp/dbhost-unit.log

stage "signature corpus (real mkfs tools; blkid -p judges)"
# Every image blkid names a type for must be refused by dbhost naming it; random bytes refused;
# zeros blank. Installs its Debian packages itself; uses the binary cargo test just built.
bash scripts/signature-corpus.sh target/debug/dbhost

stage "static binary (build, runs without libc, same results on every fixture)"
static_bin=$(bash scripts/build-static.sh | tail -n1)
bash scripts/check-static.sh "$static_bin"

stage "benchmark: relocation copier vs plain copy (host disk; prints the ratio)"
bash scripts/bench-copy.sh "${DBHOST_BENCH_COPY_MB:-256}"

stage "fuzz: md superblock parser (bounded)"
# libFuzzer through libfuzzer-sys, built with the coverage flags cargo-fuzz passes (without its
# AddressSanitizer: the target is safe Rust), so a fresh machine needs no `cargo install
# cargo-fuzz` (minutes of compiling). Needs a nightly toolchain; where there is none, the stable
# proptest `decode_never_panics` (run by cargo test above) covers random input. Longer runs:
# agent/fuzz/Cargo.toml. The build is cached outside the checkout.
if [ "${DBHOST_SKIP_FUZZ:-0}" != 1 ] && cargo +nightly --version >/dev/null 2>&1; then
  fuzz_cache=${DBHOST_FUZZ_CACHE:-/var/cache/dbhost-fuzz}
  mkdir -p "$fuzz_cache/corpus"
  RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
    cargo +nightly build --quiet --release --manifest-path agent/fuzz/Cargo.toml \
    --target x86_64-unknown-linux-gnu --target-dir "$fuzz_cache/target" --bin md_superblock
  cp -n agent/fuzz/corpus/md_superblock/* "$fuzz_cache/corpus/" 2>/dev/null || true
  if ! "$fuzz_cache/target/x86_64-unknown-linux-gnu/release/md_superblock" "$fuzz_cache/corpus" \
    -max_total_time="${DBHOST_FUZZ_SECONDS:-30}" -rss_limit_mb=1024 -artifact_prefix="$fuzz_cache/" \
    >"$fuzz_cache/last-run.log" 2>&1; then
    tail -n 30 "$fuzz_cache/last-run.log"
    echo "fuzz: the md superblock parser failed; the input is in $fuzz_cache/ (crash-*, oom-*, timeout-*)" >&2
    exit 1
  fi
  tail -n 3 "$fuzz_cache/last-run.log"
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
