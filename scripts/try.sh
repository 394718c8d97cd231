#!/usr/bin/env bash
# "See it work": boot a Debian guest in QEMU that looks like a small cloud database VM (two
# blank no-cache data disks at LUN 0 and 1, MariaDB holding a little data), let cloud-init run
# dbhost exactly as it would in a cloud, and print what dbhost did and the state of the guest.
#
#   bash scripts/try.sh          # as root
#
# Needs: root (the guest image is built with mmdebstrap), a Rust toolchain (cargo >= 1.85), and
# network access to a Debian mirror. Missing Debian/Ubuntu packages (qemu, mmdebstrap, ...) are
# installed with apt-get. First run: ~5-10 min (image build, cached afterwards under
# /var/cache/dbhost-vm); then ~2-4 min per run on 2 cores without KVM.
# The guest's logs stay in vm-tests/runs/try/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "try.sh: run as root (log in as root, or sudo where it exists): building the guest image needs root" >&2
  exit 1
fi
if ! command -v cargo >/dev/null && [ -z "${DBHOST_BIN:-}" ]; then
  echo "try.sh: cargo not found. Install Rust (https://rustup.rs, rustc >= 1.85), then re-run." >&2
  exit 1
fi
rc=0
bash scripts/vm-test.sh try || rc=$?
out=vm-tests/runs/try/out-1
show() { # title file
  printf '\n===== %s =====\n' "$1"
  if [ -f "$2" ]; then cat "$2"; else echo "(not produced)"; fi
}
for step in detect plan apply status; do
  show "dbhost $step (exit $(cat "$out/$step.rc" 2>/dev/null || echo '?'))" "$out/$step.out"
  [ -s "$out/$step.err" ] && { echo "--- stderr:"; cat "$out/$step.err"; }
done
show "guest state before dbhost (lsblk)" "$out/lsblk-before.txt"
show "guest state after dbhost" "$out/state.txt"
printf '\nlogs: vm-tests/runs/try/ (console-1.log, ttyS1-1.log, out-1/)\n'
exit $rc
