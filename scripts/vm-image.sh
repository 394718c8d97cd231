#!/usr/bin/env bash
# Build (or reuse) a Debian guest image used by vm-tests/ and scripts/try.sh.
#
#   bash scripts/vm-image.sh [SUITE]         # as root; prints the image directory on the last line of stdout
#
# SUITE: bookworm (default; Debian 12: kernel 6.1, MariaDB 10.11, PostgreSQL 15) or trixie
# (Debian 13: kernel 6.12, MariaDB 11.8, PostgreSQL 17). Both images carry the same guest files
# and package recipe (names differ per suite only where Debian renamed a package).
#
# Output directory (cached): $DBHOST_VM_CACHE/img-<suite>-<key>/ (default cache /var/cache/dbhost-vm), with
#   root.img         raw ext4 root filesystem (4 GiB sparse), NO mdadm    -> the base image
#   root-mdadm.img   the same plus Debian's mdadm (coexistence tests)
#   vmlinuz          Debian's generic kernel (linux-image-amd64's .deb, unpacked, not installed)
#   initrd.img       a small busybox initramfs that loads virtio/scsi/nvme/ata/ext4 and mounts root=
#   kver             kernel release, e.g. 6.1.0-28-amd64
#   vmlinuz-cloud, initrd-cloud.img, kver-cloud
#                    Debian's cloud kernel flavour (linux-image-cloud-amd64: what Debian's cloud
#                    images boot) and its initramfs. Both roots hold the modules of both kernels,
#                    so only the kernel and initramfs differ between flavours.
#   kernels.json     per flavour: kver, vmlinuz, initrd and the job channel its modules allow
#                    ("9p", or "virtiofs" for a kernel built without 9p: the cloud flavour)
#   suite            the suite name; manifest.txt: package versions in the image
# <key> is a sha256 over this script and the guest files it copies (vm-tests/guest/*), so editing
# either rebuilds; a second run with the same inputs is instant. Images are never modified by the
# harness (it runs every guest on a qcow2 overlay). Each suite keeps its newest image; images of
# one suite never remove another suite's.
#
# Needs root (mmdebstrap runs dpkg in a chroot) and network access to a Debian mirror
# ($DBHOST_VM_MIRROR, default http://deb.debian.org/debian). No loop devices, no mounts:
# the filesystem image is made with `mkfs.ext4 -d`. Facts behind each choice:
# ../shared/design/VM-TESTING.md §1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${DBHOST_VM_CACHE:-/var/cache/dbhost-vm}
mirror=${DBHOST_VM_MIRROR:-http://deb.debian.org/debian}
suite=${1:-${DBHOST_VM_SUITE:-bookworm}}
root_size=4G

# Packages of the guest. Changing this list changes the cache key (it is part of this script).
# mariadb-backup: physical copies for `dbhost migrate` and `dbhost backup`.
guest_packages=(
  systemd-sysv udev kmod util-linux fdisk e2fsprogs xfsprogs iproute2 dbus procps
  mariadb-server mariadb-backup postgresql cloud-init python3-cffi-backend openssh-server
  acl attr file less xz-utils zstd ca-certificates
)
# Per suite: only where Debian's names differ. trixie deliberately gets no mariadb-client-compat /
# mariadb-server-compat: a host where `apt install mariadb-server` gave only the mariadb* names
# (no mysql, mysqld, mysqladmin, mysqldump) is what dbhost must handle.
case "$suite" in
  bookworm | trixie) ;;
  *) printf 'vm-image: unknown suite %s (bookworm or trixie)\n' "$suite" >&2; exit 2 ;;
esac
# Kernel flavours: <name> <metapackage>. The cloud flavour has no 9p (CONFIG_NET_9P is off in
# Debian's cloud config): the harness then uses virtiofs for its shares.
kernel_flavours=("generic linux-image-amd64" "cloud linux-image-cloud-amd64")
# Modules the initramfs loads (with their dependencies) before mounting root. md_mod/raid0 are
# deliberately NOT loaded early: dbhost must load them itself in the real root (issue 4).
# virtio_rng: the harness gives every guest a virtio-rng device, so the kernel's RNG is ready
# before systemd starts (systemd 257's systemd-random-seed holds sysinit.target until it is: 7 s
# of every trixie boot under TCG without it).
initrd_modules=(virtio_pci virtio_blk virtio_scsi sd_mod sr_mod ata_piix nvme ext4 crc32c_generic virtio_rng)

log() { printf '%s\n' "$*" >&2; }
die() { log "vm-image: $*"; exit 1; }
t0=$SECONDS
stage_start=$SECONDS
stage() { # print the time the previous stage took, then announce the next one
  local now=$SECONDS
  [ -n "${stage_name:-}" ] && log "## ${stage_name}: $((now - stage_start)) s"
  stage_name=$1; stage_start=$now
  [ -n "$1" ] && log "## $1 ..."
  return 0
}

key_inputs() {
  cat "$0"
  for f in "$repo"/vm-tests/guest/*; do printf '\n--- %s\n' "$(basename "$f")"; cat "$f"; done
}
key=$(key_inputs | sha256sum | cut -c1-16)
out="$cache/img-$suite-$key"

if [ -f "$out/done" ]; then
  log "vm-image: cached image $out (key $key)"
  echo "$out"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "building the guest image needs root (mmdebstrap/chroot): run it as root"
ensure_tools() {
  local missing=()
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
  [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx switch_root \
    && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || missing+=(busybox-static)
  command -v cpio >/dev/null || missing+=(cpio)
  command -v depmod >/dev/null || missing+=(kmod)
  command -v file >/dev/null || missing+=(file)
  command -v zstd >/dev/null || missing+=(zstd)
  command -v xz >/dev/null || missing+=(xz-utils)
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  if [ ${#missing[@]} -gt 0 ]; then
    log "vm-image: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}
stage "host tools"
ensure_tools

mkdir -p "$cache"
# One builder at a time per cache and suite (two suites may build side by side); a crashed build
# leaves only a work dir that is removed here.
exec 9>"$cache/.lock-$suite"
flock 9
if [ -f "$out/done" ]; then echo "$out"; exit 0; fi
work="$cache/work-$suite-$key"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

# Level 1 (slow, ~2-7 min): the package tree with the kernel unpacked, cached as a directory keyed
# by the recipe (suite, mirror, packages and the function below), so that editing the guest files
# or the configuration steps only redoes level 2 (~30 s).
build_rootfs() { # DIR
  local dir=$1 include
  include=$(IFS=,; echo "${guest_packages[*]}")
  # The kernel .debs and mdadm's .deb are only downloaded inside the chroot (not installed): the
  # kernels are unpacked below without running initramfs-tools (saves ~55 s and a 37 MB initrd
  # each); mdadm goes only into the mdadm variant (and stays as a .deb for guest-side installs).
  # kernels.txt: one "<flavour> <package>" line per kernel flavour.
  cat >"$work/fetch-debs.sh" <<'HOOK'
set -eu
dir=$1; shift
mkdir -p "$dir/var/cache/dbhost-debs"
: >"$dir/var/cache/dbhost-debs/kernels.txt"
while [ $# -ge 2 ]; do
  k=$(chroot "$dir" apt-cache depends "$2" | sed -n "s/.*Depends: \(linux-image-[0-9][^ ]*\).*/\1/p" | head -n1)
  [ -n "$k" ] || { echo "no kernel package behind $2" >&2; exit 1; }
  echo "kernel $1: $k"
  echo "$1 $k" >>"$dir/var/cache/dbhost-debs/kernels.txt"
  ks="${ks:-} $k"
  shift 2
done
chroot "$dir" sh -c "cd /var/cache/dbhost-debs && apt-get download -q $ks mdadm"
HOOK
  mmdebstrap --variant=minbase --include="$include" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook="sh $work/fetch-debs.sh \"\$1\" ${kernel_flavours[*]}" \
    "$suite" "$dir" "$mirror" >&2
  local flavour pkg kdeb kver
  while read -r flavour pkg; do
    kdeb=$(ls "$dir"/var/cache/dbhost-debs/"${pkg}"_*.deb)
    # `dpkg -x` would replace the merged-/usr symlinks (/lib -> usr/lib) with directories.
    dpkg-deb --fsys-tarfile "$kdeb" | tar -x --keep-directory-symlink -C "$dir"
    kver=${pkg#linux-image-}
    [ -d "$dir/usr/lib/modules/$kver" ] || { log "vm-image: $pkg has no modules for $kver"; return 1; }
    depmod -b "$dir" "$kver"
    rm -f "$kdeb"
  done <"$dir/var/cache/dbhost-debs/kernels.txt"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin
}
key1=$( { echo "$suite $mirror ${guest_packages[*]} ${kernel_flavours[*]}"; declare -f build_rootfs; } | sha256sum | cut -c1-16)
tree="$cache/rootfs-$suite-$key1"
if [ -f "$tree.done" ]; then
  log "vm-image: cached package tree $tree"
else
  stage "mmdebstrap $suite (${#guest_packages[@]} packages + deps) + kernel unpack"
  rm -rf "$tree" "$tree.tmp"
  build_rootfs "$tree.tmp"
  mv "$tree.tmp" "$tree"
  touch "$tree.done"
  # Older trees of this suite (and of the layout before suites were named: rootfs-<key>).
  for old in "$cache"/rootfs-"$suite"-*.done "$cache"/rootfs-????????????????.done; do
    [ -e "$old" ] && [ "$old" != "$tree.done" ] && rm -rf "${old%.done}" "$old"
  done
fi

stage "copy the package tree"
cp -a "$tree" "$rootfs"
mdeb=$(ls "$rootfs"/var/cache/dbhost-debs/mdadm_*.deb)
flavours=()
while read -r flavour pkg; do
  flavours+=("$flavour")
  kver=${pkg#linux-image-}
  sfx=; [ "$flavour" = generic ] || sfx=-$flavour
  cp "$rootfs/boot/vmlinuz-$kver" "$work/vmlinuz$sfx"
  echo "$kver" >"$work/kver$sfx"
done <"$rootfs/var/cache/dbhost-debs/kernels.txt"
echo "$suite" >"$work/suite"

stage "guest configuration"
g="$repo/vm-tests/guest"
echo dbhost-vm >"$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 dbhost-vm\n' >"$rootfs/etc/hosts"
printf '/dev/vda / ext4 errors=remount-ro 0 1\n' >"$rootfs/etc/fstab"
: >"$rootfs/etc/machine-id"                # regenerated on first boot of every guest
sed -i 's/^root:[^:]*:/root::/' "$rootfs/etc/shadow"   # console login for debugging, no network anyway
install -m 0755 "$g/vmtest-runner" "$rootfs/usr/local/sbin/vmtest-runner"
install -m 0755 "$g/vmtest-fetch" "$rootfs/usr/local/sbin/vmtest-fetch"
install -m 0644 "$g/vmtest.service" "$g/vmtest-fetch.service" "$rootfs/etc/systemd/system/"
install -m 0644 "$g/99-vmtest.cfg" "$rootfs/etc/cloud/cloud.cfg.d/99-vmtest.cfg"
install -D -m 0644 "$g/dbhost-vmtest-order.conf" "$rootfs/etc/systemd/system/dbhost-.service.d/10-vmtest-fetch.conf"
systemctl --root="$rootfs" enable vmtest.service vmtest-fetch.service serial-getty@ttyS0.service >&2
# Services and timers that only cost boot time in a throw-away test guest.
systemctl --root="$rootfs" mask e2scrub_reap.service e2scrub_all.timer apt-daily.timer \
  apt-daily-upgrade.timer fstrim.timer man-db.timer logrotate.timer systemd-timesyncd.service >&2 2>/dev/null || true
mkdir -p "$rootfs/etc/systemd/system/serial-getty@ttyS0.service.d"
printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %%I $TERM\n' \
  >"$rootfs/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
mkdir -p "$rootfs/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=persistent\n' >"$rootfs/etc/systemd/journald.conf.d/vmtest.conf"
# mdadm must be absent from the base image, and so must its udev rules.
[ ! -e "$rootfs/sbin/mdadm" ] && [ ! -e "$rootfs/usr/sbin/mdadm" ] || die "mdadm slipped into the base image"
chroot "$rootfs" dpkg-query -W -f '${Package} ${Version}\n' >"$work/manifest.txt"

# One busybox initramfs per kernel flavour: same /init, that kernel's modules (those built in
# are skipped: modprobe reports them as "builtin"). The job channel follows from the modules the
# root holds for that kernel: 9p where it was built, else virtiofs.
mkinitrd() { # KVER INITRD
  local kver=$1 ird="$work/initrd-tree" m ko base
  rm -rf "$ird"
  mkdir -p "$ird"/{bin,dev,proc,sys,newroot,lib/modules}
  cp /bin/busybox "$ird/bin/busybox"
  : >"$ird/modules.order"
  for m in "${initrd_modules[@]}"; do
    # One module per call: extra names would be taken as module parameters.
    modprobe -d "$rootfs" -S "$kver" --show-depends "$m" | awk '$1=="insmod"{print $2}' | while read -r ko; do
      base=$(basename "$ko")
      case "$base" in
        *.ko.xz) xz -dc "$ko" >"$ird/lib/modules/${base%.xz}"; base=${base%.xz} ;;
        *.ko.zst) zstd -qdc "$ko" >"$ird/lib/modules/${base%.zst}"; base=${base%.zst} ;;
        *) cp "$ko" "$ird/lib/modules/$base" ;;
      esac
      grep -qx "$base" "$ird/modules.order" || echo "$base" >>"$ird/modules.order"
    done
  done
  install -m 0755 "$g/initrd-init" "$ird/init"
  (cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) >"$2"
  rm -rf "$ird"
}
# What dbhost and the bed need from every kernel (module or built in): the data disk buses, md
# RAID-0, XFS and ext4, the ISO seed; and one job channel.
need_modules=(virtio_scsi sd_mod nvme md_mod raid0 xfs ext4 isofs sr_mod)
has_module() { modprobe -d "$rootfs" -S "$1" --show-depends "$2" >/dev/null 2>&1; }
printf '{' >"$work/kernels.json"
sep=
for flavour in "${flavours[@]}"; do
  sfx=; [ "$flavour" = generic ] || sfx=-$flavour
  kver=$(cat "$work/kver$sfx")
  stage "initramfs $flavour $kver (busybox + ${#initrd_modules[@]} modules and deps)"
  for m in "${need_modules[@]}"; do has_module "$kver" "$m" || die "kernel $kver ($flavour) lacks $m"; done
  if has_module "$kver" 9pnet_virtio && has_module "$kver" 9p; then
    channel=9p
  elif has_module "$kver" virtiofs; then
    channel=virtiofs
  else
    die "kernel $kver ($flavour) has neither 9p nor virtiofs: no job channel"
  fi
  log "vm-image: kernel $flavour $kver: job channel $channel"
  mkinitrd "$kver" "$work/initrd$sfx.img"
  printf '%s\n "%s": {"kver": "%s", "vmlinuz": "vmlinuz%s", "initrd": "initrd%s.img", "channel": "%s"}' \
    "$sep" "$flavour" "$kver" "$sfx" "$sfx" "$channel" >>"$work/kernels.json"
  sep=,
done
printf '\n}\n' >>"$work/kernels.json"

stage "mkfs.ext4 -d root.img (base, no mdadm)"
mkimg() { # rootfs-dir image
  rm -f "$2"
  truncate -s "$root_size" "$2"
  mkfs.ext4 -q -F -L dbhost-root -E root_owner=0:0 -d "$1" "$2"
}
mkimg "$rootfs" "$work/root.img"

stage "mdadm variant: dpkg -i mdadm, mkfs.ext4 -d root-mdadm.img"
# dpkg runs mdadm's postinst in the chroot; a private mount namespace gives it /proc and /dev
# without leaving mounts behind. policy-rc.d keeps it from starting services.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"; chmod +x "$rootfs/usr/sbin/policy-rc.d"
unshare --mount --fork sh -c "
  mount -t proc proc '$rootfs/proc' && mount --rbind /dev '$rootfs/dev' && mount -t sysfs sys '$rootfs/sys' &&
  DEBIAN_FRONTEND=noninteractive chroot '$rootfs' dpkg -i /var/cache/dbhost-debs/$(basename "$mdeb")" >&2
rm -f "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" dpkg-query -W -f '${Package} ${Version}\n' mdadm >>"$work/manifest.txt"
mkimg "$rootfs" "$work/root-mdadm.img"

stage "finish"
rm -rf "$rootfs"
sync
date -u +%FT%TZ >"$work/done"
trap - EXIT
rm -rf "$out"
mv "$work" "$out"
# Drop this suite's images of older inputs (a few GiB each, sparse), and those of the layout
# before suites were named (img-<key>, bookworm).
for old in "$cache"/img-"$suite"-* "$cache"/img-????????????????; do
  [ -e "$old" ] && [ "$old" != "$out" ] && rm -rf "$old"
done
stage ""
log "vm-image: built $out in $((SECONDS - t0)) s (kernels: $(cat "$out"/kver*))"
ls -lsh "$out" >&2
echo "$out"
