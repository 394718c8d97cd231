#!/usr/bin/env bash
# Prove the static binary needs no libc and behaves like the test build: it runs in an empty
# root (chroot with nothing but the binary: no libc, no loader), and `dbhost detect --sysroot`
# on every host-tree fixture gives exactly the JSON the unit-tested build gives.
#
#   bash scripts/check-static.sh [STATIC_BINARY]      # builds it when not given (root for chroot)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(bash scripts/build-static.sh | tail -n1)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$work/root"
  cp "$bin" "$work/root/dbhost"
  [ ! -e "$work/root/lib" ] && [ ! -e "$work/root/lib64" ] || { echo "check-static: the empty root is not empty" >&2; exit 1; }
  out=$(chroot "$work/root" /dbhost --version)
  echo "check-static: runs in an empty root (no libc, no loader): $out"
  # Name resolution without libc's NSS: /etc/hosts is read by dbhost itself.
  mkdir -p "$work/root/etc"
  printf '10.1.2.3 old-db old-db.example\n' >"$work/root/etc/hosts"
  got=$(chroot "$work/root" /dbhost debug resolve old-db --port 5432)
  [ "$got" = "old-db:5432 (10.1.2.3)" ] || { echo "check-static: resolving old-db gave '$got'" >&2; exit 1; }
  if chroot "$work/root" /dbhost debug resolve nowhere.invalid >"$work/resolve.out" 2>&1; then
    echo "check-static: resolving a name without DNS succeeded: $(cat "$work/resolve.out")" >&2; exit 1
  fi
  grep -q "resolv.conf" "$work/resolve.out" || { echo "check-static: unclear resolve error: $(cat "$work/resolve.out")" >&2; exit 1; }
  rm -rf "$work/root/etc"
  echo "check-static: resolves names from /etc/hosts without NSS"

  # Name resolution without libc's NSS modules: a name from the root's etc/hosts, a name from a
  # DNS responder on 127.0.0.1:53 named by its etc/resolv.conf, and an S3 listing from a loopback
  # server reached by that DNS name (object_store's HTTP client on dbhost's resolver).
  mkdir -p "$work/root/etc"
  echo "127.0.0.1 hosts.backup.test" >"$work/root/etc/hosts"
  echo "nameserver 127.0.0.1" >"$work/root/etc/resolv.conf"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 scripts/fake-endpoints.py dns.backup.test "$port" "$work/endpoints.log" &
  fake_pid=$!
  trap 'kill "$fake_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
  for _ in $(seq 50); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
  done
  got=$(chroot "$work/root" /dbhost debug resolve hosts.backup.test --port 80)
  [ "$got" = "hosts.backup.test:80 (127.0.0.1)" ] || { echo "check-static: hosts.backup.test from etc/hosts gave '$got'" >&2; exit 1; }
  got=$(chroot "$work/root" /dbhost debug resolve dns.backup.test --port 80)
  [ "$got" = "dns.backup.test:80 (127.0.0.1)" ] || { echo "check-static: dns.backup.test from the DNS responder gave '$got'" >&2; cat "$work/endpoints.log" >&2; exit 1; }
  if chroot "$work/root" /dbhost debug resolve missing.backup.test 2>/dev/null; then
    echo "check-static: an unknown name resolved" >&2; exit 1
  fi
  got=$(env -i PATH="$PATH" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test chroot "$work/root" /dbhost \
    debug destination --to s3://bucket/pre --endpoint "http://dns.backup.test:$port" 2>&1) || {
    echo "check-static: listing s3://bucket/pre through dns.backup.test:$port failed: $got" >&2; exit 1; }
  case "$got" in *probe.txt*) ;; *) echo "check-static: the listing lacks probe.txt: $got" >&2; exit 1 ;; esac
  grep -q "^dns dns.backup.test type=1 answer" "$work/endpoints.log" && grep -q "^http GET /bucket?list-type=2" "$work/endpoints.log" || {
    echo "check-static: the fake endpoints did not see the queries:" >&2; cat "$work/endpoints.log" >&2; exit 1; }
  kill "$fake_pid"
  echo "check-static: resolves names without libc (etc/hosts; DNS on 127.0.0.1:53) and lists an S3 bucket by name"
else
  echo "check-static: not root, skipping the empty-root (chroot) run"
fi

cargo build -q -p dbhost
ref=target/debug/dbhost
[ -n "${CARGO_TARGET_DIR:-}" ] && ref="$CARGO_TARGET_DIR/debug/dbhost"
n=0
for fx in agent/tests/fixtures/*/; do
  [ -d "$fx/sys" ] || continue
  name=$(basename "$fx")
  "$bin" --output json --sysroot "$fx" detect --no-imds >"$work/static.json"
  "$ref" --output json --sysroot "$fx" detect --no-imds >"$work/ref.json"
  if ! cmp -s "$work/static.json" "$work/ref.json"; then
    echo "check-static: $name: the static binary's inventory differs from the test build's" >&2
    diff "$work/ref.json" "$work/static.json" | head -20 >&2
    exit 1
  fi
  grep -q '"schema": 1' "$work/static.json" || { echo "check-static: $name: no inventory" >&2; exit 1; }
  n=$((n + 1))
done
[ "$n" -ge 7 ] || { echo "check-static: only $n fixtures found" >&2; exit 1; }
echo "check-static: detect --sysroot agrees on $n fixtures"
