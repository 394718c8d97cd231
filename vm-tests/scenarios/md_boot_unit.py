"""md-create-2: dbhost's own md RAID-0 over 2 virtio-scsi LUN disks, mdadm absent, through its life.
Also md-reboot, md-reorder and md-missing-member (same disks, so one create serves three boots).

boot 1: `dbhost md create --name data` over LUN 0/1 (by-id paths): /proc/mdstat, sysfs attributes,
        a pattern written at array sectors 0 and 1024 found on member 0/1 at data_offset 4096
        (MD.md §6), dbhost md examine, an idempotent second create, `md boot-unit --expect data`;
        the hostname is changed, reboot.
host:   mdadm --examine on both disk images: checksum correct, raid0, 512K, roles 0/1; then the
        disks are swapped: disk b at LUN 0 and attached first, disk a at LUN 1.
boot 2 (md-reboot + md-reorder, other hostname, members in the other order):
        dbhost-assemble.service brought /dev/md/data back as md127, data intact, the same role for
        the same disk (by serial), `dbhost assemble` says already running. (Reboot and reorder
        share a boot: a boot costs about a minute under TCG.)
host:   disk b detached; hash of disk a.
boot 3 (md-missing-member): boot completes, the unit failed with exit 3 and says which roles
        are missing; `dbhost assemble --expect data` exits 3; no md array; disk a unchanged."""

from harness import Boot, Disk, Host, Scenario, expect, read_text
from mdlib import DATA_1G, OFF_1G, examine_ok, job, sha256

A, B = "md2-a", "md2-b"
SIZE_SECTORS = 2 * DATA_1G  # 2044 chunks per member, no rounding loss

BOOT1 = job(f"""
D0=$(dev_of {A}); D1=$(dev_of {B})
check "both data disks found by serial" test -b "$D0" -a -b "$D1"
k0=$(kname "$D0"); k1=$(kname "$D1")
echo "$k0" >"$ST/k0"; echo "$k1" >"$ST/k1"
check "mdadm absent" sh -c '! command -v mdadm'
run create $DBHOST md create --name data --chunk 512K "$D0" "$D1"
check "md create exit 0" is "$(rc_of create)" 0
check "md create says created" has "$(out_of create)" "created/started array data"
check "/dev/md/data -> md127" is "$(readlink /dev/md/data)" ../md127
md=$(kname /dev/md/data)
check "mdstat members" has "$(cat /proc/mdstat)" "$md : active raid0 $k1[1] $k0[0]"
check "mdstat size/chunk" has "$(cat /proc/mdstat)" "$(({SIZE_SECTORS} / 2)) blocks super 1.2 512k chunks"
check "md/level" is "$(mdattr $md level)" raid0
check "md/raid_disks" is "$(mdattr $md raid_disks)" 2
check "md/chunk_size" is "$(mdattr $md chunk_size)" 524288
check "md/layout" is "$(mdattr $md layout)" 1
check "md/metadata_version" is "$(mdattr $md metadata_version)" 1.2
check "md/array_state" is "$(mdattr $md array_state)" clean
check "array size" is "$(cat /sys/block/$md/size)" {SIZE_SECTORS}
check "slot of $k0" is "$(mdattr $md dev-$k0/slot)" 0
check "slot of $k1" is "$(mdattr $md dev-$k1/slot)" 1
check "data offset of $k0" is "$(mdattr $md dev-$k0/offset)" {OFF_1G}
check "data offset of $k1" is "$(mdattr $md dev-$k1/offset)" {OFF_1G}
check "md uuid = create's uuid" has "$(out_of create | tr -d :)" "$(mdattr $md uuid | tr -d -)"
# MD.md §6: array sector 0 -> member 0 at data_offset; sector 1024 (one chunk) -> member 1.
write_pat /dev/md/data 0 0; write_pat /dev/md/data 1024 1; write_pat /dev/md/data 2048 2
check "array sector 0 on member 0 at data_offset" read_is_pat "$D0" {OFF_1G} 0
check "array sector 1024 on member 1 at data_offset" read_is_pat "$D1" {OFF_1G} 1
check "array sector 2048 on member 0 at data_offset+1024" read_is_pat "$D0" $(({OFF_1G} + 1024)) 2
run examine $DBHOST md examine "$D0"
check "dbhost md examine: checksum correct" hasre "$(out_of examine)" "Checksum : [0-9a-f]+ - correct"
check "dbhost md examine: role 0" hasre "$(out_of examine)" "Device Role : Active device 0"
check "dbhost md examine: name" hasre "$(out_of examine)" "Name : any:data"
check "dbhost md examine: no stale superblocks" hasnt "$(out_of examine)" "Found At"
run create2 $DBHOST md create --name data --chunk 512K "$D0" "$D1"
check "second create exit 0" is "$(rc_of create2)" 0
check "second create unchanged" has "$(out_of create2)" "unchanged:"
run bootunit $DBHOST md boot-unit --expect data --wait 20s
check "boot-unit exit 0" is "$(rc_of bootunit)" 0
check "boot unit enabled" is "$(systemctl is-enabled dbhost-assemble.service)" enabled
hostnamectl set-hostname md-other-host 2>/dev/null || echo md-other-host >/etc/hostname
sync
next_boot reboot
""")

AFTER_BOOT = f"""
check "mdadm absent" sh -c '! command -v mdadm'
check "unit active" is "$(systemctl is-active dbhost-assemble.service)" active
check "unit assembled it" has "$(journalctl -b -u dbhost-assemble.service --no-pager)" "data: assembled"
check "/dev/md/data -> md127" is "$(readlink /dev/md/data)" ../md127
check "array clean" is "$(mdattr md127 array_state)" clean
check "exactly one array" is "$(grep -c '^md' /proc/mdstat)" 1
check "array size" is "$(cat /sys/block/md127/size)" {SIZE_SECTORS}
check "data at sector 0" read_is_pat /dev/md/data 0 0
check "data at sector 1024" read_is_pat /dev/md/data 1024 1
check "data at sector 2048" read_is_pat /dev/md/data 2048 2
run assemble $DBHOST assemble
check "assemble exit 0" is "$(rc_of assemble)" 0
check "assemble: already running" has "$(out_of assemble)" "data: already running (md127)"
D0=$(dev_of {A}); D1=$(dev_of {B})
run examine0 $DBHOST md examine "$D0"
run examine1 $DBHOST md examine "$D1"
check "disk a keeps role 0" hasre "$(out_of examine0)" "Device Role : Active device 0"
check "disk b keeps role 1" hasre "$(out_of examine1)" "Device Role : Active device 1"
"""

# The kernel may hand out the same sdX names after the swap (names follow probe order, not the
# LUN), so "moved" is checked on the SCSI address: disk a now answers at LUN 1.
BOOT2 = job(AFTER_BOOT + """
check "hostname changed" is "$(hostname)" md-other-host
check "disks really moved (disk a is at LUN 1 now)" is "$(basename "$(readlink -f /sys/block/$(kname "$D0")/device)" | cut -d: -f4)" 1
check "disk a is member 0" has "$(cat /proc/mdstat)" " $(kname "$D0")[0]"
check "disk b is member 1" has "$(cat /proc/mdstat)" " $(kname "$D1")[1]"
""")

BOOT3 = job(f"""
check "disk a attached" test -b "$(dev_of {A})"
check "disk b detached" is "$(dev_of {B})" ""
check "unit failed" is "$(systemctl is-failed dbhost-assemble.service)" failed
check "unit exit status 3" is "$(systemctl show -P ExecMainStatus dbhost-assemble.service)" 3
J=$(journalctl -b -u dbhost-assemble.service --no-pager)
check "unit: missing role 1" has "$J" "refusing to start data: roles [1] of 2 are missing (present: [0] on"
check "unit: nothing written" has "$J" "nothing was written"
run assemble $DBHOST assemble --expect data
check "assemble exit 3" is "$(rc_of assemble)" 3
check "assemble: present/missing roles" has "$(out_of assemble)" "present roles: [0]  missing roles: [1]"
check "assemble: incomplete" has "$(out_of assemble)" "data: incomplete"
check "no md array" sh -c "! grep -q '^md' /proc/mdstat"
check "boot completed" is "$(systemctl is-system-running 2>&1 | grep -cE 'running|degraded')" 1
""")

STATE = {}


def examine_both(run):
    examine_ok(run.disk_path(run.disks[0]), role=0, n=2, name="data", data_size=DATA_1G)
    examine_ok(run.disk_path(run.disks[1]), role=1, n=2, name="data", data_size=DATA_1G)


def check_create(run, out):
    rc = read_text(out / "create.rc").strip()
    expect(rc == "0", f"md create exited {rc}: {read_text(out / 'create.err')[-800:]}")


def reorder(run):
    a, b = run.disks
    a.lun, b.lun = 1, 0
    run.disks = [b, a]


def drop_b(run):
    run.disks = [d for d in run.disks if d.name != "b"]
    STATE["a"] = sha256(run.disk_path(run.disks[0]))


def a_unchanged(run):
    expect(sha256(run.disk_path(run.disks[0])) == STATE["a"],
           "disk a changed during the boot with a missing member")
    examine_ok(run.disk_path(run.disks[0]), role=0, n=2, name="data", data_size=DATA_1G)


SCENARIO = Scenario(
    name="md-create-2",
    description="md RAID-0 over 2 LUN disks without mdadm; reboot+hostname change, reorder, missing member",
    disks=[Disk("a", size="1G", bus="scsi", lun=0, serial=A), Disk("b", size="1G", bus="scsi", lun=1, serial=B)],
    mask=["mariadb.service", "postgresql.service"],
    memory_mb=1024,  # no database runs here; a smaller guest boots faster under TCG
    steps=[
        Boot(job=BOOT1, check=check_create),
        Host(examine_both),
        Host(reorder),
        Boot(job=BOOT2),
        Host(drop_b),
        Boot(job=BOOT3),
        Host(a_unchanged),
    ],
)
