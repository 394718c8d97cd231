"""apply without a database (engine none): the array, a filesystem aligned to it, the fstab line
and the mount, checked with the filesystem's own tools (xfs_info, dumpe2fs); a second apply
changes nothing. Each claim's applies run back to back in its job, so claims can share a boot."""

from harness import MIB, Disk
from micro.claimlib import profile, profile_path
from micro.tier import Claim, MBoot

APPLY = """
run apply $DBHOST --output json apply --profile {p} --yes
check "apply: exit 0" is "$(rc_of apply)" 0
check "mounted at /mnt/{name}" mountpoint -q /mnt/{name}
dev=$(awk '$2 == "/mnt/{name}" {{print $1}}' /proc/mounts)
check "fstab: by filesystem UUID, owned by dbhost" hasre "$(cat /etc/fstab)" "^UUID=$(blkid -s UUID -o value "$dev") /mnt/{name} {fs} .*x-dbhost.owner={name}"
run apply2 $DBHOST --output json apply --profile {p} --yes
check "second apply: exit 0" is "$(rc_of apply2)" 0
check "second apply: changed nothing" has "$(out_of apply2 | tr -d ' ')" '"changed":0'
"""


REFUSED = """
run apply $DBHOST apply --profile {p} --yes
check "apply refuses: exit 3" is "$(rc_of apply)" 3
check "apply says why" has "$(out_of apply)" "needs at least"
check "no array was made" test ! -e /dev/md/{name}
check "nothing mounted" sh -c '! mountpoint -q /mnt/{name}'
"""


def apply_claim(name: str, proves: str, disks: list, checks: str, *, level="raid0", fs="xfs",
                expect_rc: int = 0) -> Claim:
    prof = profile(name, [d.serial_() for d in disks], level=level, fs=fs, what=proves)
    if expect_rc == 3:
        job = REFUSED.format(p=profile_path(prof[0]), name=name)
    else:
        job = APPLY.format(p=profile_path(prof[0]), name=name, fs=fs) + checks + f"umount /mnt/{name}\n"
    return Claim(name=f"apply-{name}", proves=proves, disks=disks, profiles=dict([prof]),
                 steps=[MBoot(job=job, timeout=300)])


def scsi(prefix: str, n: int, size: int, **kw) -> list:
    return [Disk(f"a{i}", size=size, serial=f"{prefix}-{i}", **kw) for i in range(n)]


XFS_STRIPE = """
XI=$(xfs_info /mnt/{name} | tr -s ' ')
echo "$XI" >"$VMTEST_OUT/xfs_info.txt"
check "on the md array" hasre "$dev" "^/dev/md"
check "xfs: stripe unit = chunk (128 x 4 KiB blocks)" has "$XI" "sunit=128 swidth={sw} blks"
check "xfs: log stripe unit 32 KiB (8 blocks: the 512 KiB chunk is above XFS's log maximum)" has "$(echo "$XI" | grep -A1 '^log ')" "sunit=8 blks"
# 512e disks (512-byte logical, 4 KiB physical sectors: the harness default) and 4Kn disks both
# get 4 KiB XFS sectors (mkfs.xfs follows the physical sector size)
check "xfs: sector size {sect}" has "$XI" "sectsz={sect} "
"""


def claims() -> list:
    return [
        apply_claim("xfs4disks", "apply over 4 blank disks: RAID-0, XFS with stripe unit = chunk and width = 4 "
                                 "members, log stripe unit 32 KiB, mounted by UUID; a second apply changes nothing",
                    scsi("apx4", 4, 320 * MIB), XFS_STRIPE.format(name="xfs4disks", sw=512, sect=4096)),
        apply_claim("xfs4k", "apply over 2 disks with 4096-byte sectors: XFS with 4096-byte sectors, aligned",
                    scsi("apx4k", 2, 600 * MIB, block_size=4096), XFS_STRIPE.format(name="xfs4k", sw=256, sect=4096)),
        apply_claim("xfssmall", "apply over 2 disks whose array is under 1 GiB: refused by the plan (XFS cannot "
                                "fit its log into such a striped filesystem), nothing written",
                    scsi("apsml", 2, 320 * MIB), "", expect_rc=3),
        apply_claim("ext4x2", "apply with ext4 over 2 disks: RAID stride = chunk, stripe width = 2 chunks",
                    scsi("ape2", 2, 64 * MIB), """
DH=$(dumpe2fs -h "$dev" 2>/dev/null | tr -s ' ')
check "on the md array" hasre "$dev" "^/dev/md"
check "ext4: RAID stride 128 blocks (512 KiB)" has "$DH" "RAID stride: 128"
check "ext4: RAID stripe width 256 blocks" has "$DH" "RAID stripe width: 256"
""", fs="ext4"),
        apply_claim("single", "apply with one disk and level none: XFS right on the disk (no md array, no "
                              "stripe), mounted by UUID",
                    scsi("apone", 1, 320 * MIB), """
check "the filesystem is on the disk itself" is "$(kname "$dev")" "$(kname "$(dev_of apone-0)")"
check "xfs: no stripe" has "$(xfs_info /mnt/single | tr -s ' ')" "sunit=0 swidth=0 blks"
""", level="none"),
    ]
