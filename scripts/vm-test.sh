#!/usr/bin/env bash
# Run the VM test suite (vm-tests/): all scenarios, or the named ones.
#
#   bash scripts/vm-test.sh                      # every scenario (as root)
#   bash scripts/vm-test.sh boot-detect          # just one (several names allowed)
#   bash scripts/vm-test.sh --list               # names and one-line descriptions
#
# Installs what it needs with apt-get (when root and missing), builds the static dbhost binary
# (scripts/build-static.sh), the guest images the scenarios use (scripts/vm-image.sh SUITE,
# cached under $DBHOST_VM_CACHE, default /var/cache/dbhost-vm) and the micro-tier guests made from
# their kernels (vm-tests/micro/build.py), then runs vm-tests/harness.py. Guests run one at a time
# under TCG (KVM only if a short probe boot succeeds; DBHOST_VM_ACCEL=tcg|kvm forces).
# Logs of every run: vm-tests/runs/<scenario>/ (console-N.log, ttyS1-N.log, out-N/, cmd-N.txt);
# micro-tier claims that shared a boot: vm-tests/runs/micro-gNN/ (out-N/claims/<claim>/).
# Environment: DBHOST_BIN=path skips the build and uses that binary. The backup scenarios get
# Azurite and moto started here (or use DBHOST_AZURITE_PORT / DBHOST_S3_PORT when set).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

if [ "${1:-}" = "--list" ]; then
  exec python3 vm-tests/harness.py --list
fi
for a in "$@"; do
  case "$a" in -h | --help) sed -n '2,15p' "$0"; exit 0 ;; esac
done

t0=$SECONDS
stage() { printf '== vm-test: %s (t=%ss)\n' "$1" "$((SECONDS - t0))" >&2; }

# Host packages. qemu-system-x86 and qemu-utils must come from the same release: installing
# qemu-system-x86 alone can remove a newer backported qemu-utils (and with it qemu-img).
need_pkgs() {
  local p=()
  command -v qemu-system-x86_64 >/dev/null || p+=(qemu-system-x86)
  command -v qemu-img >/dev/null || p+=(qemu-utils)
  command -v python3 >/dev/null || p+=(python3)
  command -v genisoimage >/dev/null || command -v xorriso >/dev/null || p+=(genisoimage)
  command -v file >/dev/null || p+=(file)
  python3 -c 'import yaml' 2>/dev/null || p+=(python3-yaml) # capture-redeploy loads the example user-data
  command -v debugfs >/dev/null || p+=(e2fsprogs)         # capture-redeploy and micro/build.py read images
  command -v mdadm >/dev/null || p+=(mdadm)               # the md scenarios' oracle (mdadm --examine)
  command -v readelf >/dev/null || p+=(binutils)          # micro/build.py: the tools' libraries
  command -v cpio >/dev/null || p+=(cpio)                 # micro/build.py: the initramfs
  file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || p+=(busybox-static) # micro/build.py
  command -v losetup >/dev/null || p+=(mount)             # micro/corpus.py: LVM on a loop device
  command -v nbdkit >/dev/null || p+=(nbdkit)             # fault injection (error filter)
  # The refusal claims' signatures, each written by its format's own tool (micro/corpus.py).
  command -v mkfs.xfs >/dev/null || p+=(xfsprogs)
  command -v mkfs.btrfs >/dev/null || p+=(btrfs-progs)
  command -v mkfs.vfat >/dev/null || p+=(dosfstools)
  command -v mkntfs >/dev/null || p+=(ntfs-3g)
  command -v mkfs.exfat >/dev/null || p+=(exfatprogs)
  command -v mkfs.f2fs >/dev/null || p+=(f2fs-tools)
  command -v cryptsetup >/dev/null || p+=(cryptsetup-bin)
  command -v make-bcache >/dev/null || p+=(bcache-tools)
  command -v pvcreate >/dev/null || p+=(lvm2)
  command -v sfdisk >/dev/null || p+=(fdisk)
  command -v socat >/dev/null || p+=(socat)               # the backup scenarios' guestfwd (one per connection)
  printf '%s\n' "${p[@]}"
}
missing=$(need_pkgs)
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "vm-test: missing packages: $(echo $missing); install them or run as root" >&2
    exit 1
  fi
  stage "apt-get install $(echo $missing)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if echo "$missing" | grep -q qemu; then
    v=$(apt-cache policy qemu-system-x86 | awk '/Candidate/{print $2}')
    apt-get install -y -qq --no-install-recommends --allow-downgrades \
      "qemu-system-x86=$v" "qemu-utils=$v" "qemu-block-extra=$v" >&2
  fi
  rest=$(echo "$missing" | grep -v '^qemu' || true)
  [ -z "$rest" ] || apt-get install -y -qq --no-install-recommends $rest >&2
fi
# Kernels without 9p (Debian's cloud flavour) get the harness's shares over virtiofs. Debian 12's
# qemu-system-common ships QEMU's own virtiofsd; from QEMU 8 it is the separate virtiofsd package.
if [ ! -x /usr/lib/qemu/virtiofsd ] && [ ! -x /usr/libexec/virtiofsd ] && ! command -v virtiofsd >/dev/null \
  && [ "$(id -u)" = 0 ] && apt-cache show virtiofsd >/dev/null 2>&1; then
  stage "apt-get install virtiofsd"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends virtiofsd >&2
fi

stage "self-test of the harness checks"
python3 vm-tests/selftest.py

if [ -n "${DBHOST_BIN:-}" ]; then
  bin=$DBHOST_BIN
else
  stage "static dbhost binary"
  bin=$(bash scripts/build-static.sh | tail -n1)
fi
# One image per Debian suite the selected scenarios use (bookworm, trixie).
images=()
declare -A img_of=()
for suite in $(python3 vm-tests/harness.py --suites "$@"); do
  stage "guest image ($suite)"
  img_of[$suite]=$(bash scripts/vm-image.sh "$suite" | tail -n1)
  images+=(--image "${img_of[$suite]}")
done
micro=()
if [ -n "${img_of[bookworm]:-}" ]; then
  stage "micro-tier guests (vm-tests/micro/build.py)"
  # Debian 12's kernel is the micro tier's default; md claims also run on every other kernel
  # given: Debian 13's (6.12) when its image is in this run, and DBHOST_VM_MICRO_EXTRA's
  # (space-separated NAME=IMAGE_DIR or NAME=IMAGE_DIR:VMLINUZ; modules and tools are read from
  # IMAGE_DIR/root-mdadm.img).
  micro=(--micro "default=$(python3 vm-tests/micro/build.py --image "${img_of[bookworm]}" | tail -n1)")
  extra=${DBHOST_VM_MICRO_EXTRA:-}
  [ -z "${img_of[trixie]:-}" ] || extra="trixie=${img_of[trixie]} $extra"
  for e in $extra; do
    name=${e%%=*} rest=${e#*=}
    dir=${rest%%:*} kernel=${rest#"$dir"}
    micro+=(--micro "$name=$(python3 vm-tests/micro/build.py --image "$dir" --name "$name" \
      ${kernel:+--kernel "${kernel#:}"} | tail -n1)")
  done
fi
# The backup scenarios' object-store servers (Azurite, moto: scripts/backup-servers.py) on the
# host's loopback, stopped when this script ends; skipped when the caller runs them already
# (test-all.sh) or no backup scenario is selected.
want_servers=0
[ $# -eq 0 ] && want_servers=1
for a in "$@"; do case "$a" in backup-*) want_servers=1 ;; esac; done
if [ $want_servers = 1 ] && [ -z "${DBHOST_AZURITE_PORT:-}" ]; then
  stage "object-store servers (Azurite, moto)"
  srv=$(mktemp -d /tmp/dbhost-backup-servers.XXXXXX)
  trap 'python3 "$repo/scripts/backup-servers.py" stop "$srv"; rm -rf "$srv"' EXIT
  eval "$(python3 scripts/backup-servers.py start "$srv")"
fi
stage "scenarios"
rc=0
python3 vm-tests/harness.py "${images[@]}" "${micro[@]}" --dbhost "$bin" "$@" || rc=$?
stage "done (exit $rc)"
exit $rc
