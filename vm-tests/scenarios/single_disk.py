"""single-disk: the test-DB profile (profiles/single-disk-test.toml): one data disk, no array.
apply (run by the job, as an operator would; cloud-init is covered by roomsy and postgres-move)
formats the disk itself (XFS), mounts it at /datadrive and moves MariaDB there; no md array
exists; CHECKSUM TABLE identical; a second apply changes nothing. Then `rollback` (rollback.py):
`dbhost rollback --yes` puts MariaDB back on /var/lib/mysql with the same data."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import rc, run_dbhost, summary, tools_job  # noqa: E402
from harness import Boot, Disk, Scenario, expect, read_text  # noqa: E402
from rollback import ROLLBACK_JOB, check_rollback  # noqa: E402

PROFILE = "/usr/local/share/dbhost/profiles/single-disk-test.toml"
ROWS = 20000


def check(run, out):
    expect(rc(out, "apply1") == 0, f"apply exit {rc(out, 'apply1')}: {read_text(out / 'apply1.err')[-1500:]}")
    expect(summary(out / "apply1.out")["changed"] > 0, "first apply changed nothing")
    expect(rc(out, "apply2") == 0, f"second apply exit {rc(out, 'apply2')}")
    s = summary(out / "apply2.out")
    expect(s["changed"] == 0, f"second apply changed something: {s}")
    b, a = read_text(out / "sum-before.txt"), read_text(out / "sum-after.txt")
    expect(b == a, f"CHECKSUM TABLE differs:\n{b[-1000:]}\n---\n{a[-1000:]}")
    check_rollback(run, out)


SCENARIO = Scenario(
    name="single-disk",
    suite=True,  # passed in a guest: 218 s
    description="test-DB profile: one disk, no array, XFS on the disk, MariaDB moved; idempotent; then rollback",
    disks=[Disk("lun0", size="2G", bus="scsi", lun=0, serial="data-lun0")],
    mask=["postgresql.service"],
    steps=[Boot(job=tools_job() + f"""
systemctl start mariadb
/usr/local/bin/dbload {ROWS} >"$VMTEST_OUT/load.log" 2>&1
/usr/local/bin/dbsum >"$VMTEST_OUT/sum-before.txt" 2>&1
{run_dbhost(f"apply --profile {PROFILE} --yes --output json", "apply1")}
check "apply exited 0" test "$(cat $VMTEST_OUT/apply1.rc)" = 0
check "no md array" sh -c '! grep -q "^md" /proc/mdstat 2>/dev/null'
check "/datadrive is the disk itself (XFS)" sh -c 'findmnt -no SOURCE,FSTYPE /datadrive | grep -Eq "^/dev/sd[a-z]+ +xfs$"'
check "datadir is /datadrive/mysql" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql/
/usr/local/bin/dbsum >"$VMTEST_OUT/sum-after.txt" 2>&1
dbhost apply --profile {PROFILE} --yes --output json >"$VMTEST_OUT/apply2.out" 2>"$VMTEST_OUT/apply2.err"; echo $? >"$VMTEST_OUT/apply2.rc"
dbhost status >"$VMTEST_OUT/status.txt" 2>&1
""" + ROLLBACK_JOB, check=check)],
)
