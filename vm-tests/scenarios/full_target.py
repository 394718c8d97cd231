"""full-target: the data disks are too small for the datadir (a 600 MiB table file in it; two
160 MiB disks). apply must refuse before any write: exit 3, both disks still all zeros on the
host, MariaDB still serving from /var/lib/mysql."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import blank, rc, run_dbhost  # noqa: E402
from harness import Boot, Disk, Scenario, expect, read_text  # noqa: E402

PROFILE = "/usr/local/share/dbhost/profiles/qemu-dev.toml"


def check(run, out):
    code = rc(out, "apply")
    expect(code == 3, f"apply exit {code}, expected 3 (refused): {read_text(out / 'apply.err')[-1500:]}"
                      f"{read_text(out / 'apply.out')[-1500:]}")
    for d in run.disks:
        expect(blank(run.disk_path(d)), f"disk {d.name} was written to although apply refused")


SCENARIO = Scenario(
    name="full-target",
    suite=True,  # passed in a guest: 184 s
    description="data disks too small for the datadir: refusal before any write (disks stay blank)",
    disks=[Disk("lun0", size="160M", bus="scsi", lun=0, serial="data-lun0"),
           Disk("lun1", size="160M", bus="scsi", lun=1, serial="data-lun1")],
    mask=["postgresql.service"],
    user_data=None,  # dbhost runs from the job: nothing here is about cloud-init
    steps=[Boot(job="""
systemctl start mariadb
# A big table file in the datadir (fallocate: fast, fully allocated).
mysql -e 'CREATE DATABASE big'; fallocate -l 600M /var/lib/mysql/big/ballast.dat; chown mysql:mysql /var/lib/mysql/big/ballast.dat
du -sm /var/lib/mysql >"$VMTEST_OUT/du.txt"
""" + run_dbhost(f"apply --profile {PROFILE} --yes --output json", "apply") + """
check "MariaDB still on /var/lib/mysql" test "$(mysql -Nse 'SELECT @@datadir')" = /var/lib/mysql/
check "MariaDB active" systemctl is-active mariadb
check "no md array" sh -c '! grep -q "^md" /proc/mdstat 2>/dev/null'
""", check=check)],
)
