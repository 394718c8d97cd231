"""Shared pieces of the md scenarios (issue 4): guest-side shell helpers and host-side oracles.

Guest jobs get PRELUDE prepended: helpers to find a data disk by its serial, exact-value
assertions for `check` (they print what they got, so a failed check says why), and the data
pattern written through the array and looked for on the members (MD.md §6).
Host side: `examine_ok` runs `mdadm --examine` on a disk image (harness.md_examine) and asserts
exact fields; `sha256` hashes a disk image (to prove nothing was written to it).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

from harness import ScenarioFailure, expect, md_examine

# 1 GiB members, 512 KiB chunk: data_offset 4096 (MD.md §1.7), data_size 2097152 - 4096 = 2093056
# sectors = 2044 whole chunks, so nothing is lost to chunk rounding.
OFF_1G = 4096
DATA_1G = 2097152 - OFF_1G
DATA_2G = 4194304 - OFF_1G

PRELUDE = r"""
DBHOST=/usr/local/sbin/dbhost
ST=/var/lib/mdvm
mkdir -p "$ST"
# The job starts after multi-user.target, which does not wait for udev's coldplug queue: on
# trixie (systemd 257) a data disk's by-id link was still missing at that point. Bounded wait.
udevadm settle --timeout=60
# dev_of SERIAL: the stable /dev/disk/by-id path of the data disk with that serial.
dev_of() {
  local p
  for p in /dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_"$1" /dev/disk/by-id/*_"$1" /dev/disk/by-id/virtio-"$1"; do
    [ -b "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}
kname() { basename "$(readlink -f "$1")"; }
# is ACTUAL EXPECTED / has TEXT NEEDLE / hasre TEXT ERE: assertions that say what they saw.
is() { [ "$1" = "$2" ] && return 0; echo "got [$1] expected [$2]"; return 1; }
isnt() { [ "$1" != "$2" ] && return 0; echo "got [$1], expected something else"; return 1; }
has() { grep -qF -- "$2" <<<"$1" && return 0; echo "[$2] not in: ${1:0:1500}"; return 1; }
hasnt() { grep -qF -- "$2" <<<"$1" || return 0; echo "[$2] unexpectedly in: ${1:0:1500}"; return 1; }
hasre() { grep -qE -- "$2" <<<"$1" && return 0; echo "/$2/ not in: ${1:0:1500}"; return 1; }
# run NAME CMD...: run a command, keep NAME.out/.err/.rc in the results and in $ST.
run() {
  local n=$1; shift
  "$@" >"$VMTEST_OUT/$n.out" 2>"$VMTEST_OUT/$n.err"; echo $? >"$VMTEST_OUT/$n.rc"
  cat "$VMTEST_OUT/$n.out" "$VMTEST_OUT/$n.err"
}
rc_of() { cat "$VMTEST_OUT/$1.rc"; }
out_of() { cat "$VMTEST_OUT/$1.out" "$VMTEST_OUT/$1.err"; }
# pattern I: 512 deterministic bytes, different for every I.
pattern() { local s="" i; for i in {1..64}; do s+="mdvm-pattern-$1-"; done; printf '%s' "${s:0:512}"; }
# write_pat DEV SECTOR I / read_is_pat DEV SECTOR I
write_pat() { pattern "$3" | dd of="$1" bs=512 seek="$2" count=1 oflag=direct conv=notrunc status=none; }
read_is_pat() {
  local got want
  got=$(dd if="$1" bs=512 skip="$2" count=1 iflag=direct status=none | od -An -c | head -c 200)
  want=$(pattern "$3" | od -An -c | head -c 200)
  [ "$got" = "$want" ] && return 0
  echo "$1 sector $2: got [$got] expected pattern $3 [$want]"; return 1
}
# pattern4k I / write_pat4k DEV BYTE I / read_is_pat4k DEV BYTE I: the same with 4 KiB blocks at a
# byte offset (O_DIRECT works for them on 512-byte and 4096-byte sector devices alike).
pattern4k() { local i; for i in 1 2 3 4 5 6 7 8; do pattern "$1"; done; }
write_pat4k() { pattern4k "$3" | dd of="$1" bs=4096 seek=$(($2 / 4096)) count=1 iflag=fullblock oflag=direct conv=notrunc status=none; }
read_is_pat4k() {
  cmp <(dd if="$1" bs=4096 skip=$(($2 / 4096)) count=1 iflag=direct status=none) <(pattern4k "$3") >/dev/null && return 0
  echo "$1 byte $2: not pattern $3: $(dd if="$1" bs=4096 skip=$(($2 / 4096)) count=1 iflag=direct status=none | od -An -c | head -c 160)"
  return 1
}
# md sysfs attribute
mdattr() { cat "/sys/block/$1/md/$2" 2>&1; }
"""


def data_offset(dev_sectors: int, chunk_sectors: int = 1024) -> int:
    """The data offset (sectors) mdadm gives a v1.2 RAID0 member of this size (MD.md §1.7,
    mdadm's validate_geometry1), derived here from the note, not from dbhost's code."""
    headroom = 262144
    while headroom * 1024 > dev_sectors and (chunk_sectors == 0 or headroom // 2 >= 2 * chunk_sectors):
        headroom //= 2
    if dev_sectors < 128:
        bm = 0
    elif dev_sectors - 128 >= 200 * 2097152:
        bm = 256
    elif dev_sectors - 8 > 8 * 2097152:
        bm = 128
    else:
        bm = 8
    return -(-(24 + bm + headroom) // 2048) * 2048


def job(text: str) -> str:
    return PRELUDE + text


def norm(text: str) -> str:
    """mdadm output with runs of blanks squeezed, for exact `Key : value` matching."""
    return re.sub(r"[ \t]+", " ", text).replace("\n", " \n")


def examine_ok(image: Path, *, role: int, n: int, name: str, chunk: str = "512K", offset: int = OFF_1G,
               data_size: int | None = None, extra: tuple = ()) -> str:
    """mdadm --examine on the host: checksum correct and the exact geometry of a dbhost member."""
    t = md_examine(image)
    s = norm(t)
    want = [" Magic : a92b4efc", " Version : 1.2", " Raid Level : raid0", f" Raid Devices : {n}",
            f" Chunk Size : {chunk}", f" Device Role : Active device {role}", f" Array State : {'A' * n} ",
            f" Data Offset : {offset} sectors", " Super Offset : 8 sectors", " State : clean",
            f" Name : any:{name} "]
    if data_size is not None:
        want.append(f" Avail Dev Size : {data_size} sectors")
    want += list(extra)
    missing = [w.strip() for w in want if w not in s + " "]
    expect(not missing, f"mdadm --examine {image.name}: missing {missing}:\n{t}")
    expect(re.search(r"Checksum : [0-9a-f]+ - correct", s), f"mdadm --examine {image.name}: checksum not correct:\n{t}")
    return t


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * 1024 * 1024)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def mdadm_root(run, variant: str = "mdadm"):
    """Make the next boot use a fresh overlay over another image variant (same data disks):
    e.g. look at a dbhost-made array with the mdadm-equipped image."""
    base = run.image / f"root-{variant}.img"
    if not base.is_file():
        raise ScenarioFailure(f"guest image {base} missing")
    run.root = run.dir / f"root-{variant}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base.resolve()),
                    str(run.root)], check=True)
