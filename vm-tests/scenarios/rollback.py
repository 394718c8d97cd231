"""rollback: after apply moved MariaDB onto the array, `dbhost rollback --yes` puts it back on
/var/lib/mysql (configuration restored, the kept old datadir back in place) serving the same data
(CHECKSUM TABLE identical to before the move).

In the suite this runs at the end of single-disk's boot (ROLLBACK_JOB, check_rollback: the same
commands and checks after single-disk's own apply); run `rollback` by name for the 2-disk array."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import rc, run_dbhost, tools_job  # noqa: E402
from harness import Boot, Disk, Scenario, expect, read_text  # noqa: E402

PROFILE = "/usr/local/share/dbhost/profiles/qemu-dev.toml"
ROWS = 30000


# Bash run after an apply moved MariaDB (sum-before.txt holds the CHECKSUM TABLE from before).
ROLLBACK_JOB = """
dbhost rollback --yes >"$VMTEST_OUT/rollback.out" 2>"$VMTEST_OUT/rollback.err"; echo $? >"$VMTEST_OUT/rollback.rc"
wait_until 120 systemctl is-active mariadb
check "MariaDB active after rollback" systemctl is-active mariadb
check "back on /var/lib/mysql" test "$(mysql -Nse 'SELECT @@datadir')" = /var/lib/mysql/
/usr/local/bin/dbsum >"$VMTEST_OUT/sum-rolled-back.txt" 2>&1
dbhost status >"$VMTEST_OUT/status-rolled-back.txt" 2>&1
ls -la /var/lib /etc/mysql/mariadb.conf.d /etc/systemd/system/mariadb.service.d >"$VMTEST_OUT/ls.txt" 2>&1
"""


def check_rollback(run, out):
    expect(rc(out, "rollback") == 0,
           f"rollback exit {rc(out, 'rollback')}: {read_text(out / 'rollback.err')[-1500:]}{read_text(out / 'rollback.out')[-800:]}")
    b, a = read_text(out / "sum-before.txt"), read_text(out / "sum-rolled-back.txt")
    expect(b == a, f"CHECKSUM TABLE differs after rollback:\n{b[-1200:]}\n---\n{a[-1200:]}")


def check(run, out):
    expect(rc(out, "apply") == 0, f"apply exit {rc(out, 'apply')}: {read_text(out / 'apply.err')[-1500:]}")
    check_rollback(run, out)


SCENARIO = Scenario(
    name="rollback",
    suite=False,  # in the suite at the end of single-disk's boot
    description="apply, then dbhost rollback --yes: MariaDB back on /var/lib/mysql with the same data",
    disks=[Disk("lun0", size="2G", bus="scsi", lun=0, serial="data-lun0"),
           Disk("lun1", size="2G", bus="scsi", lun=1, serial="data-lun1")],
    mask=["postgresql.service"],
    user_data=None,  # dbhost runs from the job: nothing here is about cloud-init
    steps=[Boot(job=tools_job() + f"""
systemctl start mariadb
/usr/local/bin/dbload {ROWS} >"$VMTEST_OUT/load.log" 2>&1
/usr/local/bin/dbsum >"$VMTEST_OUT/sum-before.txt" 2>&1
""" + run_dbhost(f"apply --profile {PROFILE} --yes --output json", "apply") + """
check "apply exited 0" test "$(cat $VMTEST_OUT/apply.rc)" = 0
check "moved to the array" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql/
""" + ROLLBACK_JOB, check=check)],
)
