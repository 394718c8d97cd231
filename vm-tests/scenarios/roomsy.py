"""roomsy: the main job of dbhost, end to end. Two blank no-cache virtio-scsi disks at LUN 0/1
(LUN 1 attached ~20 s after cloud-init started `dbhost detect --wait-disks`: late-disk),
MariaDB loaded with generated data (DBHOST_ROOMSY_MB, default 32 MiB in the suite: rows up to 128 MiB, the rest
as 64 KiB blobs), `dbhost apply` run by
cloud-init with the qemu-dev profile. Proves: the apply exits 0 and changed something; CHECKSUM
TABLE of every table is identical before and after; MariaDB serves from /datadrive/mysql on the md
device; a second apply changes nothing (exit 0, summary changed=0); after a reboot (mdadm absent)
the array is assembled by dbhost's boot unit, mounted, MariaDB is up with identical data, and
apply still changes nothing (cloud-init off at that boot: nothing there is about it). The profile
tunes: tune-persist's checks run here (database variables live right after the apply; every knob
in effect after the reboot, `tune --explain` complete, `tune --apply` then a no-op). Boot 3 is
`adopt` (adopt.py): a new VM from the original image gets these data disks and adopts them."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import OUT, load_sizes, moved_job, summary, write_files  # noqa: E402
from adopt import ADOPT_STEPS  # noqa: E402
import late_disk  # noqa: E402
from tune_persist import (after_apply_job, after_reboot_job, check_after_apply,  # noqa: E402
                          check_after_reboot, check_second_tune, second_tune_job)
from harness import Boot, Disk, Scenario, dbhost_runcmd, expect, read_text, size_bytes  # noqa: E402

PROFILE = "/usr/local/share/dbhost/profiles/qemu-dev.toml"
MB = int(os.environ.get("DBHOST_ROOMSY_MB", "32"))
# Up to 128 MiB of rows (~300 bytes each on disk), the rest as 64 KiB blobs.
ROWS, BLOBS = load_sizes(MB)
DISK = f"{max(2, (MB * 3) // 1024 + 1)}G"
LUN0 = Disk("lun0", size=DISK, bus="scsi", lun=0, serial="data-lun0")
LUN1 = Disk("lun1", size=DISK, bus="scsi", lun=1, serial="data-lun1")  # attached late (late-disk)

def check_first(run, out):
    late_disk.check_wait(out, LUN0, LUN1, size_bytes(DISK))
    expect(read_text(out / "apply1.rc").strip() == "0",
           f"apply exit {read_text(out / 'apply1.rc').strip()}: {read_text(out / 'apply1.err')[-1500:]}")
    s = summary(out / "apply1.out")
    expect(s["changed"] > 0, f"first apply changed nothing: {s}")
    for n in ("apply2",):
        expect(read_text(out / f"{n}.rc").strip() == "0", f"{n} exit {read_text(out / f'{n}.rc').strip()}")
        s2 = summary(out / f"{n}.out")
        expect(s2["changed"] == 0, f"{n}: second apply changed something: {s2}")
    check_after_apply(out)
    t = read_text(out / "timing.txt")
    run.timings["guest"] = dict(line.split("=", 1) for line in t.split())


def check_reboot(run, out):
    expect(read_text(out / "apply3.rc").strip() == "0", f"apply after reboot exit {read_text(out / 'apply3.rc')}")
    s = summary(out / "apply3.out")
    expect(s["changed"] == 0, f"apply after reboot changed something: {s}")
    check_after_reboot(out, capped=False)  # qemu-dev.toml gives no disk caps
    check_second_tune(out)


JOB1 = f"""
echo "load_s=$(cat $VMTEST_OUT/load.s) apply_s=$(cat $VMTEST_OUT/apply1.s) mb={MB} rows={ROWS} blobs={BLOBS}" >"$VMTEST_OUT/timing.txt"
du -sm /datadrive/mysql >"$VMTEST_OUT/du.txt" 2>&1
check "apply via cloud-init exited 0" test "$(cat $VMTEST_OUT/apply1.rc)" = 0
{moved_job(ROWS, "sum-before.txt", "sum-after.txt")}
{after_apply_job(PROFILE)}
dbhost apply --profile {PROFILE} --yes --output json >"$VMTEST_OUT/apply2.out" 2>"$VMTEST_OUT/apply2.err"; echo $? >"$VMTEST_OUT/apply2.rc"
check "second apply exited 0" test "$(cat $VMTEST_OUT/apply2.rc)" = 0
dbhost status >"$VMTEST_OUT/status.txt" 2>&1
cat /proc/mdstat >"$VMTEST_OUT/mdstat.txt"
cp /etc/fstab "$VMTEST_OUT/fstab.txt"
next_boot reboot
"""

JOB2 = f"""
check "mdadm is absent" sh -c '! command -v mdadm && ! test -e /sbin/mdadm'
check "array assembled at boot" grep -q "active raid0" /proc/mdstat
check "/datadrive mounted from md" sh -c 'findmnt -no SOURCE /datadrive | grep -q "^/dev/md"'
wait_until 120 systemctl is-active mariadb
check "MariaDB is active after reboot" systemctl is-active mariadb
check "datadir still /datadrive/mysql" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql/
/usr/local/bin/dbsum >"$VMTEST_OUT/sum-reboot.txt" 2>&1
check "dbsum after reboot ran" test -s "$VMTEST_OUT/sum-reboot.txt"
{after_reboot_job(PROFILE)}
dbhost apply --profile {PROFILE} --yes --output json >"$VMTEST_OUT/apply3.out" 2>"$VMTEST_OUT/apply3.err"; echo $? >"$VMTEST_OUT/apply3.rc"
{second_tune_job(PROFILE)}
dbhost status >"$VMTEST_OUT/status.txt" 2>&1
"""


def compare_reboot(run, out):
    before = read_text(run.out(1) / "sum-before.txt")
    after = read_text(out / "sum-reboot.txt")
    expect(before == after, f"CHECKSUM TABLE differs after reboot:\n--- before\n{before[-1500:]}\n--- after\n{after[-1500:]}")
    check_reboot(run, out)


SCENARIO = Scenario(
    name="roomsy",
    suite=True,  # passed in a guest: roomsy 767 s (and two first boots before)
    description=f"apply via cloud-init: MariaDB ({MB} MiB) onto a fresh 2-disk RAID-0; same checksums, idempotent, survives reboot; a new VM adopts the disks; late disk, tuning",
    disks=[LUN0],  # LUN1 is hot-added while dbhost waits for it (late-disk)
    profiles={late_disk.PROFILE_NAME: late_disk.PROFILE},
    mask=["postgresql.service"],
    user_data={
        "write_files": write_files(),
        "runcmd": late_disk.RUNCMD + [
            "systemctl start mariadb",
            f"t0=$(date +%s); /usr/local/bin/dbload {ROWS} {BLOBS} >{OUT}/load.log 2>&1; echo $(( $(date +%s) - t0 )) >{OUT}/load.s",
            f"/usr/local/bin/dbsum >{OUT}/sum-before.txt 2>&1",
            f"t0=$(date +%s); {dbhost_runcmd(f'apply --profile {PROFILE} --yes --output json', 'apply1')}; "
            f"echo $(( $(date +%s) - t0 )) >{OUT}/apply1.s",
        ],
    },
    steps=[
        Boot(job=late_disk.JOB.format(serial=LUN1.serial) + JOB1, on_mark=late_disk.on_mark(LUN1), check=check_first,
             timeout=1500 + 2 * MB),
        Boot(job=JOB2, check=compare_reboot, cloud_init=False),
        *ADOPT_STEPS,
    ],
)
