"""md-stale-unequal: md-stale-superblock and md-unequal in one boot (mdadm absent).

md-stale-superblock: disks s0 s1 s2 (1 GiB). `md create --name old s0 s1`, `md stop old`; then
  `md create --name data s1 s2` must refuse (exit 3, names s1 and the old array, tells about
  --wipe) and write nothing (hash of s1 and s2 before/after); with --wipe it succeeds and s1
  carries only the new array's superblock (host: mdadm --examine shows any:data only; s0 keeps
  any:old). A mounted array cannot be stopped (exit 3, names the mount point).
md-unequal: disks u0 (1 GiB), u1, u2 (2 GiB): 3 members, 2 zones, the second with 2 devices -
  the case a kernel refuses with EOPNOTSUPP when the superblock carries no layout (MD.md §1.9).
  `md create` succeeds, md/layout = 1, feature map 0x1000, size = sum of chunk-rounded data sizes.

In the suite, md-create-4's first boot runs this (BODY on DISKS, then host_checks)."""

from harness import Boot, Disk, Host, Scenario, expect
from mdlib import DATA_1G, DATA_2G, examine_ok, job, md_examine, norm

UNEQ_SECTORS = DATA_1G + 2 * DATA_2G  # all three are whole chunks already

BODY = f"""
S0=$(dev_of st-0); S1=$(dev_of st-1); S2=$(dev_of st-2)
U0=$(dev_of uq-0); U1=$(dev_of uq-1); U2=$(dev_of uq-2)
check "6 data disks found" test -b "$S0" -a -b "$S1" -a -b "$S2" -a -b "$U0" -a -b "$U1" -a -b "$U2"
# --- md-stale-superblock
# ends_hash DEV: hash of the first and last 4 MiB (where superblocks, GPT and fs magic live)
ends_hash() {{
  {{ dd if="$1" bs=1M count=4 status=none
    dd if="$1" bs=1M skip=$(( $(blockdev --getsize64 "$1") / 1048576 - 4 )) status=none; }} | sha256sum
}}
run old $DBHOST md create --name old "$S0" "$S1"
check "create old exit 0" is "$(rc_of old)" 0
mkdir -p /mnt/old; mkfs.ext4 -q -F /dev/md/old && mount /dev/md/old /mnt/old
run stopbusy $DBHOST md stop old
check "stop while mounted: exit 3" is "$(rc_of stopbusy)" 3
check "stop while mounted: names the mount" has "$(out_of stopbusy)" "/mnt/old"
umount /mnt/old
run stop $DBHOST md stop old
check "stop old exit 0" is "$(rc_of stop)" 0
check "old array gone" sh -c "! grep -q '^md' /proc/mdstat"
h1=$(ends_hash "$S1"); h2=$(ends_hash "$S2")
run refuse $DBHOST md create --name data "$S1" "$S2"
check "create over the stale member: exit 3" is "$(rc_of refuse)" 3
check "refusal names the array" has "$(out_of refuse)" "refusing to create array data"
check "refusal names the old superblock" has "$(out_of refuse)" "any:old"
check "refusal names the disk" has "$(out_of refuse)" "$(kname "$S1")"
check "refusal tells about --wipe" has "$(out_of refuse)" "--wipe"
check "refusal wrote nothing to s1" is "$(ends_hash "$S1")" "$h1"
check "refusal wrote nothing to s2" is "$(ends_hash "$S2")" "$h2"
check "no array after the refusal" sh -c "! grep -q '^md' /proc/mdstat"
run wipe $DBHOST md create --name data --wipe "$S1" "$S2"
check "create --wipe exit 0" is "$(rc_of wipe)" 0
run ex1 $DBHOST md examine "$S1"
check "s1: new array only" has "$(out_of ex1)" "any:data"
check "s1: old array gone" hasnt "$(out_of ex1)" "any:old"
check "s1: checksum correct" hasre "$(out_of ex1)" "Checksum : [0-9a-f]+ - correct"
check "new array: first MiB zero" is "$(head -c 1048576 /dev/md/data | tr -d '\\0' | wc -c)" 0
run stopdata $DBHOST md stop data
check "stop data exit 0" is "$(rc_of stopdata)" 0
# --- md-unequal
run uneq $DBHOST md create --name uneq "$U0" "$U1" "$U2"
check "unequal create exit 0 (no EOPNOTSUPP)" is "$(rc_of uneq)" 0
md=$(kname /dev/md/uneq)
check "unequal: md/layout 1" is "$(mdattr $md layout)" 1
check "unequal: array_state clean" is "$(mdattr $md array_state)" clean
check "unequal: size = sum of chunk-rounded data sizes" is "$(cat /sys/block/$md/size)" {UNEQ_SECTORS}
check "no layout complaint from the kernel" sh -c "! dmesg | grep -q 'cannot assemble multi-zone'"
write_pat /dev/md/uneq $(({UNEQ_SECTORS} - 1)) 9
check "last array sector readable" read_is_pat /dev/md/uneq $(({UNEQ_SECTORS} - 1)) 9
run exu $DBHOST md examine "$U0"
check "unequal examine: feature map" hasre "$(out_of exu)" "Feature Map : 0x1000"
run stopuneq $DBHOST md stop uneq
check "stop uneq exit 0" is "$(rc_of stopuneq)" 0
sync
"""
BOOT = job(BODY)

# Its disks, for a scenario that runs BODY in its own boot (md-create-4 does, in the suite).
DISKS = [Disk("s0", size="1G", lun=0, serial="st-0"), Disk("s1", size="1G", lun=1, serial="st-1"),
         Disk("s2", size="1G", lun=2, serial="st-2"), Disk("u0", size="1G", lun=3, serial="uq-0"),
         Disk("u1", size="2G", lun=4, serial="uq-1"), Disk("u2", size="2G", lun=5, serial="uq-2")]


def host_checks(run):
    d = {x.name: run.disk_path(x) for x in run.disks}
    # s0 still carries the old array (only s1/s2 were wiped); s1 only the new one
    examine_ok(d["s0"], role=0, n=2, name="old", data_size=DATA_1G)
    t = examine_ok(d["s1"], role=0, n=2, name="data", data_size=DATA_1G)
    expect("any:old" not in t, f"s1 still mentions the old array:\n{t}")
    examine_ok(d["s2"], role=1, n=2, name="data", data_size=DATA_1G)
    for i, (k, size) in enumerate([("u0", DATA_1G), ("u1", DATA_2G), ("u2", DATA_2G)]):
        examine_ok(d[k], role=i, n=3, name="uneq", data_size=size,
                   extra=(" Feature Map : 0x1000 ", " Layout : original "))
    t = norm(md_examine(d["u1"]))
    expect("Feature Map : 0x1000" in t, t)


SCENARIO = Scenario(
    name="md-stale-unequal",
    description="md-stale-superblock (refused without --wipe, nothing written; cleared with it) + md-unequal (layout, no EOPNOTSUPP)",
    suite=False,  # in the suite inside md-create-4's first boot
    disks=DISKS,
    mask=["mariadb.service", "postgresql.service"],
    steps=[Boot(job=BOOT), Host(host_checks)],
)
