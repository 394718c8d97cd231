"""adopt: a database outlives its VM. Boot 1 moves MariaDB onto a fresh 2-disk array (apply via
cloud-init). Then a NEW VM (a fresh OS disk from the original image, new instance-id and
hostname, its own empty MariaDB) gets the same data disks: apply adopts the array (assembles it,
no mkfs, members never written), finds the finished datadir on the mount (R2: the completion
marker) and points MariaDB at it without copying; the same data is served.

In the suite, roomsy's third boot is this adoption (ADOPT_STEPS on roomsy's finished disks), which
saves the first boot here; run `adopt` by name for the standalone scenario. The new VM's job runs
apply itself (no cloud-init: the operator over SSH), its hostname comes from the kernel command
line."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import OUT, events, rc, run_dbhost, summary, tools_job, write_files  # noqa: E402
from harness import Boot, Disk, Host, Scenario, dbhost_runcmd, expect, read_text  # noqa: E402

PROFILE = "/usr/local/share/dbhost/profiles/qemu-dev.toml"
ROWS = 50000
APPLY = dbhost_runcmd(f"apply --profile {PROFILE} --yes --output json", "apply")


def check_first(run, out):
    expect(rc(out, "apply") == 0, f"apply exit {rc(out, 'apply')}: {read_text(out / 'apply.err')[-1500:]}")


def check_adopt(run, out):
    expect(rc(out, "apply") == 0, f"adopting apply exit {rc(out, 'apply')}: {read_text(out / 'apply.err')[-1500:]}")
    evs = events(out / "apply.out")
    changed = {e["step"] for e in evs if e.get("event") == "finished" and isinstance(e.get("outcome"), dict)
               and "changed" in e["outcome"]}
    expect("fs.mkfs" not in changed, f"adopt ran mkfs: {changed}")
    expect("db.pass1" not in changed and "db.pass2" not in changed, f"adopt copied the datadir: {changed}")
    obs = [e for e in evs if e.get("event") == "observed" and e.get("step") == "md.array"]
    expect(obs and "adopt" in obs[0].get("description", ""), f"md.array is not an adopt: {obs}")
    b = read_text(run.out(1) / "sum-before.txt")
    a = read_text(out / "sum-after.txt")
    expect(b == a, f"CHECKSUM TABLE differs on the new VM:\n{b[-1200:]}\n---\n{a[-1200:]}")
    s = summary(out / "apply2.out")
    expect(rc(out, "apply2") == 0 and s["changed"] == 0, f"second apply on the new VM: rc {rc(out, 'apply2')}, {s}")



ADOPT_JOB = tools_job() + f"""
check "a new VM" test "$(hostname)" = dbhost-vm-2
check "its own MariaDB on the OS disk" test "$(mysql -Nse 'SELECT @@datadir')" = /var/lib/mysql/
{run_dbhost(f"apply --profile {PROFILE} --yes --output json", "apply")}
check "apply exited 0" test "$(cat $VMTEST_OUT/apply.rc)" = 0
check "datadir on the array" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql/
check "/datadrive on md" sh -c 'findmnt -no SOURCE /datadrive | grep -q "^/dev/md"'
/usr/local/bin/dbsum >"$VMTEST_OUT/sum-after.txt" 2>&1
{run_dbhost(f"apply --profile {PROFILE} --yes --output json", "apply2")}
dbhost status >"$VMTEST_OUT/status.txt" 2>&1
ls -la /datadrive /var/lib >"$VMTEST_OUT/ls.txt" 2>&1
"""

# A new VM from the original image with the data disks of a finished run (boot 1's sum-before.txt
# is the reference). Appended to roomsy in the suite.
ADOPT_STEPS = [
    Host(lambda run: run.fresh_os("i-adopt-2", "dbhost-vm-2")),
    Boot(instance_id="i-adopt-2", hostname="dbhost-vm-2", cloud_init=False, job=ADOPT_JOB, check=check_adopt),
]


SCENARIO = Scenario(
    name="adopt",
    suite=False,  # in the suite as roomsy's third boot
    description="a new VM (fresh OS image) with the data disks of a finished run: array adopted, no mkfs, no copy, same data",
    disks=[Disk("lun0", size="2G", bus="scsi", lun=0, serial="data-lun0"),
           Disk("lun1", size="2G", bus="scsi", lun=1, serial="data-lun1")],
    mask=["postgresql.service"],
    user_data={
        "write_files": write_files(),
        "runcmd": [
            "systemctl start mariadb",
            f"/usr/local/bin/dbload {ROWS} >{OUT}/load.log 2>&1",
            f"/usr/local/bin/dbsum >{OUT}/sum-before.txt 2>&1",
            APPLY,
        ],
    },
    steps=[
        Boot(job="""
check "apply exited 0" test "$(cat $VMTEST_OUT/apply.rc)" = 0
check "datadir on the array" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql/
ls -la /datadrive >"$VMTEST_OUT/datadrive-ls.txt" 2>&1
""", check=check_first),
        *ADOPT_STEPS,
    ],
)
