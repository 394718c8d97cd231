#!/usr/bin/env bash
# Host-side benchmark of the datadir relocation copier (issue 5 §8, copy rate): dbhost's pass 1
# (read + sha256 + write + metadata) against a plain read + write copy of the same files, both
# measured in this run on this machine's disk. Prints figures and the ratio; asserts nothing about
# time. The in-guest benchmark (vm-tests/bench/relocate.py) measures the same copier under TCG,
# where software SHA-256 (no SHA instructions in the emulated CPU) is the bottleneck; here the
# CPU's SHA extensions are used when present (sha2 detects them at run time).
#
#   bash scripts/bench-copy.sh [MIB]        # default 1024 MiB of generated files
#
# Builds the `db_copy_bench` example with the static build's flags (reuses its artifacts).
# DBHOST_BENCH_DIR: where the scratch trees go (default /var/tmp; must be a real disk, not tmpfs).
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-1024}
target=x86_64-unknown-linux-gnu
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
  cargo build -q --release --locked --target "$target" -p dbhost --example db_copy_bench >&2
dir=${CARGO_TARGET_DIR:-target}
bin="$dir/$target/release/examples/db_copy_bench"
base=$(mktemp -d "${DBHOST_BENCH_DIR:-/var/tmp}/dbhost-bench-copy.XXXXXX")
trap 'rm -rf "$base"' EXIT
src=$base/src
mkdir -p "$src/db1" "$src/db2"
# A datadir's shape: a few big files (tablespaces, logs) holding most bytes, many small ones.
big=$((mib * 7 / 8 / 4))
for i in 1 2 3 4; do
  head -c "$((big * 1024 * 1024))" /dev/urandom >"$src/db$((i % 2 + 1))/big$i.ibd"
done
small_total=$((mib * 1024 - big * 4 * 1024)) # KiB
n=$((small_total / 64))
python3 - "$src" "$n" <<'PY'
import os, sys
src, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(src, "db1" if i % 2 else "db2", f"t{i}.frm"), "wb") as f:
        f.write(os.urandom(64 * 1024))
PY
echo "bench-copy: $(du -sh "$src" | cut -f1) in $(find "$src" -type f | wc -l) files under $base" >&2
"$bin" "$src" "$base/dst"
