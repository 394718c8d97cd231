"""Refusal claims for disks in use or unfit (not a signature): mounted, active swap, a member of
a running array, attached read-only, smaller than the profile's minimum. Each is refused by
detect (the right reason) and apply (exit 3, naming the disk), and stays unchanged."""

from checks import check_refused
from harness import MIB, Disk, Host, expect
from micro.claimlib import detect_ok
from mdlib import sha256
from micro.tier import Claim, MBoot
from micro.claims.signatures import one_disk_profile

DETECT_APPLY = """
dbhost detect --output json >"$VMTEST_OUT/detect.out" 2>"$VMTEST_OUT/detect.err"; echo $? >"$VMTEST_OUT/detect.rc"
check "detect exit 0" is "$(cat "$VMTEST_OUT/detect.rc")" 0
run apply $DBHOST apply --profile /usr/local/share/dbhost/profiles/{profile} --yes
check "apply refuses (exit 3)" is "$(rc_of apply)" 3
check "apply names the disk" has "$(out_of apply)" "$(kname "$S")"
check "apply mounted nothing new" sh -c '! mountpoint -q /mnt/{label}'
"""


def in_use(name: str, proves: str, setup: str, reason: str, fields: dict, *, teardown: str = "",
           size=64 * MIB, min_size=None, extra_disks=(), readonly=False, check_text="") -> Claim:
    serial = f"use-{name}"[:20]
    label = ("use" + "".join(c for c in name if c.isalnum()))[:12]
    pname, ptext = one_disk_profile(serial, label)
    if min_size:
        ptext = ptext.replace('min-size = "16M"', f'min-size = "{min_size}"')
    disk = Disk("d", size=size, serial=serial, readonly=readonly)
    hashes = {}

    def before(run):
        hashes["d"] = sha256(run.disk_path(disk))

    def check(run, out):
        inv = detect_ok(out)
        if reason:
            check_refused(inv, serial, reason, **fields)
        if not setup.strip():  # nothing written by the job itself: the image must be as it was
            expect(sha256(run.disk_path(disk)) == hashes["d"], f"the {name} disk changed although refused")

    job = f'S=$(dev_of {serial})\ncheck "disk attached" test -b "$S"\n' + setup + \
        DETECT_APPLY.format(profile=pname, label=label) + check_text + teardown
    return Claim(name=f"refuse-{name}", proves=proves, disks=[disk, *extra_disks], profiles={pname: ptext},
                 steps=[Host(before), MBoot(job=job, check=check)])


def claims() -> list:
    return [
        in_use("mounted", "a data disk with a mounted filesystem is refused (mounted, naming the mount point)",
               'mkfs.ext4 -q -F "$S" && mkdir -p /mnt/busy && mount "$S" /mnt/busy && echo hi >/mnt/busy/f\n'
               'check "mounted" mountpoint -q /mnt/busy\n',
               "mounted", {"mountpoint": "/mnt/busy"},
               check_text='check "apply names the mount point" has "$(out_of apply)" /mnt/busy\n'
                          'check "the file is still there" grep -q hi /mnt/busy/f\n',
               teardown="umount /mnt/busy\n"),
        in_use("active-swap", "a data disk in use as swap is refused (swap)",
               'mkswap -q "$S" && swapon "$S"\ncheck "swap active" grep -q "^$(readlink -f "$S") " /proc/swaps\n',
               "swap", {}, teardown='swapoff "$S"\n'),
        in_use("array-member", "a member of a running md array is refused (held by the md device)",
               'P=$(dev_of use-member-p)\n'
               'run mk $DBHOST md create --name usemember "$S" "$P"\ncheck "array made" is "$(rc_of mk)" 0\n',
               "held_by", {}, extra_disks=[Disk("p", size=64 * MIB, serial="use-member-p")],
               teardown="$DBHOST md stop usemember\n"),
        in_use("read-only", "a disk attached read-only is refused (read_only) and nothing is written",
               "", "read_only", {}, readonly=True,
               check_text='check "the kernel sees it read-only" is "$(cat /sys/block/$(kname "$S")/ro)" 1\n'),
        # min-size is the profile's, so the refusal is the plan's (detect has no profile here)
        in_use("too-small", "a disk smaller than the profile's min-size is refused by plan and apply (too small)",
               "", None, {}, min_size="128M",
               check_text='check "apply says too small" has "$(out_of apply)" "too small"\n'),
    ]
