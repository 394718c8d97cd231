#!/usr/bin/env bash
# Build the fully static dbhost binary (glibc, +crt-static, static-pie) and print its path on the
# last line of stdout. It runs where no libc exists (a busybox initramfs) and on any x86_64 distro.
#
#   bash scripts/build-static.sh            # release build
#
# `--target` is required: without it RUSTFLAGS would also reach the proc-macro crates and the
# build fails ("cannot produce proc-macro ... does not support these crate types").
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
t0=$SECONDS
# getrandom finds libc's getrandom() with dlsym(), which a static binary cannot do: it would fall
# back to opening /dev/urandom (absent in an empty root). linux_getrandom links the call directly.
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"" \
  cargo build --release --locked --target "$target" -p dbhost >&2
dir=${CARGO_TARGET_DIR:-target}
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
bin="$dir/$target/release/dbhost"
[ -x "$bin" ] || { echo "build-static: $bin was not produced" >&2; exit 1; }
desc=$(file -b "$bin")
case "$desc" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) echo "build-static: $bin is not static: $desc" >&2; exit 1 ;;
esac
size=$(stat -c %s "$bin")
echo "build-static: $bin" >&2
echo "build-static: $desc" >&2
echo "build-static: size $size bytes ($((size / 1024)) KiB), built in $((SECONDS - t0)) s" >&2
echo "$bin"
