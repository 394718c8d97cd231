"""full-target: the data disks are too small for the datadir (a 600 MiB table file in it; two
160 MiB disks). apply must refuse before any write: exit 3, both disks still all zeros on the
host, MariaDB still serving from /var/lib/mysql.

In the suite this runs in busy-disk's boot (JOB, check, DISKS and PROFILES here): its disks have
serials small-lun2/3, picked by a profile of their own, so busy-disk's profile never sees them."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import blank, rc, run_dbhost  # noqa: E402
from harness import REPO, Boot, Disk, Scenario, expect, read_text  # noqa: E402

PROFILE_NAME = "vmtest-small.toml"
PROFILE = f"/usr/local/share/dbhost/profiles/{PROFILE_NAME}"
# qemu-dev.toml picking the small disks only, with ext4: the plan refuses XFS on an array under
# 1 GiB before apply ever looks at the room (micro claim apply-xfssmall), and this scenario is
# about the room check.
PROFILES = {PROFILE_NAME: (REPO / "profiles" / "qemu-dev.toml").read_text()
            .replace('serial = ["data*", "vdata*", "nvme-data*"]', 'serial = ["small*"]')
            .replace('type = "xfs"', 'type = "ext4"', 1)}
assert 'serial = ["small*"]' in PROFILES[PROFILE_NAME], "qemu-dev.toml's serial line changed"
assert 'type = "ext4"' in PROFILES[PROFILE_NAME], "qemu-dev.toml's filesystem type line changed"
DISKS = [Disk("small2", size="160M", bus="scsi", lun=2, serial="small-lun2"),
         Disk("small3", size="160M", bus="scsi", lun=3, serial="small-lun3")]

JOB = """
systemctl start mariadb
# A big table file in the datadir (fallocate: fast, fully allocated).
mysql -e 'CREATE DATABASE big'; fallocate -l 600M /var/lib/mysql/big/ballast.dat; chown mysql:mysql /var/lib/mysql/big/ballast.dat
du -sm /var/lib/mysql >"$VMTEST_OUT/du.txt"
""" + run_dbhost(f"apply --profile {PROFILE} --yes --output json", "apply-full") + """
check "full target: MariaDB still on /var/lib/mysql" test "$(mysql -Nse 'SELECT @@datadir')" = /var/lib/mysql/
check "full target: MariaDB active" systemctl is-active mariadb
check "full target: no md array" sh -c '! grep -q "^md" /proc/mdstat 2>/dev/null'
"""


def check(run, out):
    code = rc(out, "apply-full")
    expect(code == 3, f"apply exit {code}, expected 3 (refused): {read_text(out / 'apply-full.err')[-1500:]}"
                      f"{read_text(out / 'apply-full.out')[-1500:]}")
    text = read_text(out / "apply-full.out") + read_text(out / "apply-full.err")
    expect("MiB" in text, f"the refusal does not say how much room is needed: {text[-1500:]}")
    for d in DISKS:
        expect(blank(run.disk_path(d)), f"disk {d.name} was written to although apply refused")


SCENARIO = Scenario(
    name="full-target",
    suite=False,  # in the suite inside busy-disk's boot
    description="data disks too small for the datadir: refusal before any write (disks stay blank)",
    disks=DISKS,
    profiles=PROFILES,
    mask=["postgresql.service"],
    user_data=None,  # dbhost runs from the job: nothing here is about cloud-init
    steps=[Boot(job=JOB, check=check)],
)
