#!/usr/bin/env bash
# Signature corpus (issue: disks holding exFAT, F2FS or unknown data were taken as blank): build
# small images of every kind with the real tools from Debian's packages, judge each with
# `blkid -p` (util-linux) and compare with `dbhost debug probe` (scripts/signature_corpus.py
# says what passes). Installs the tools it needs (as root; apt-get --no-install-recommends).
# Usage: bash scripts/signature-corpus.sh [DBHOST_BIN]   (default: cargo build's target/debug/dbhost)
# With DBHOST_REQUIRE_ORACLES=1 (scripts/test-all.sh sets it) a missing tool or blkid fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --quiet -p dbhost
  bin=target/debug/dbhost
fi
mapfile -t pkgs < <(python3 -c 'import sys; sys.path.insert(0, "scripts"); import signature_corpus as c; print("\n".join(c.PACKAGES))')
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "signature-corpus: missing packages ${need[*]} (run as root to install them)" >&2
  fi
fi
python3 scripts/signature_corpus.py selftest
python3 scripts/signature_corpus.py check --dbhost "$bin"
