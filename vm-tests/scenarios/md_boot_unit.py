"""md-boot-unit: dbhost's boot-time assembly unit (dbhost-assemble.service), mdadm absent, when
a member is missing at boot. (Creating arrays, their geometry, data placement, reordered,
missing and late members under `dbhost assemble` are micro-tier claims, micro/claims/md.py and
lifecycle.py; the unit assembling a complete array at boot is checked by roomsy and
crash-matrix.)

boot 1: `dbhost md create --name data` over LUN 0/1, a data pattern through the array,
        `md boot-unit --expect data --wait 20s`: the unit is enabled.
host:   disk b detached; hash of disk a.
boot 2: the boot completes; the unit failed with exit status 3 and its journal names the missing
        role and says nothing was written; `dbhost assemble --expect data` exits 3; no md array;
        disk a unchanged (host hash) and still a correct member (host mdadm --examine)."""

from harness import Boot, Disk, Host, Scenario, expect
from mdlib import DATA_1G, examine_ok, job, sha256

A, B = "md2-a", "md2-b"

BOOT1 = job(f"""
D0=$(dev_of {A}); D1=$(dev_of {B})
check "both data disks found by serial" test -b "$D0" -a -b "$D1"
check "mdadm absent" sh -c '! command -v mdadm'
run create $DBHOST md create --name data --chunk 512K "$D0" "$D1"
check "md create exit 0" is "$(rc_of create)" 0
write_pat /dev/md/data 0 0; write_pat /dev/md/data 1024 1
run bootunit $DBHOST md boot-unit --expect data --wait 20s
check "boot-unit exit 0" is "$(rc_of bootunit)" 0
check "boot unit enabled" is "$(systemctl is-enabled dbhost-assemble.service)" enabled
sync
""")

BOOT2 = job(f"""
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
check "no md array" sh -c "! grep -q '^md' /proc/mdstat"
check "boot completed" is "$(systemctl is-system-running 2>&1 | grep -cE 'running|degraded')" 1
""")

STATE = {}


def drop_b(run):
    examine_ok(run.disk_path(run.disks[0]), role=0, n=2, name="data", data_size=DATA_1G)
    examine_ok(run.disk_path(run.disks[1]), role=1, n=2, name="data", data_size=DATA_1G)
    run.disks = [d for d in run.disks if d.name != "b"]
    STATE["a"] = sha256(run.disk_path(run.disks[0]))


def a_unchanged(run):
    expect(sha256(run.disk_path(run.disks[0])) == STATE["a"], "disk a changed during the boot with a missing member")
    examine_ok(run.disk_path(run.disks[0]), role=0, n=2, name="data", data_size=DATA_1G)


SCENARIO = Scenario(
    name="md-boot-unit",
    description="the boot unit with a member missing at boot: the unit fails with exit 3 naming the role, "
                "the boot completes, nothing is written",
    disks=[Disk("a", size="1G", bus="scsi", lun=0, serial=A), Disk("b", size="1G", bus="scsi", lun=1, serial=B)],
    mask=["mariadb.service", "postgresql.service"],
    memory_mb=1024,  # no database runs here; a smaller guest boots faster under TCG
    steps=[Boot(job=BOOT1), Host(drop_b), Boot(job=BOOT2), Host(a_unchanged)],
)
