"""busy-disk: one of the two candidate disks is mounted elsewhere (a filesystem put there by
someone else). apply must refuse with exit 3 before writing anything: the other disk is still
all zeros on the host, MariaDB still serves from /var/lib/mysql, fstab and the datadir untouched.

The same boot then runs full-target (full_target.py) on two small disks of its own, picked by a
profile of its own, and exfat-refused (exfat_refused.py) on an exFAT disk of its own: one boot
for the three refusals."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import blank, events, rc, run_dbhost  # noqa: E402
from exfat_refused import DISKS as EXFAT_DISKS  # noqa: E402
from exfat_refused import JOB as EXFAT_JOB  # noqa: E402
from exfat_refused import PROFILES as EXFAT_PROFILES  # noqa: E402
from exfat_refused import check as check_exfat  # noqa: E402
from full_target import DISKS as FULL_DISKS  # noqa: E402
from full_target import JOB as FULL_JOB  # noqa: E402
from full_target import PROFILES as FULL_PROFILES  # noqa: E402
from full_target import check as check_full  # noqa: E402
from harness import Boot, Disk, Scenario, expect, read_text  # noqa: E402

PROFILE = "/usr/local/share/dbhost/profiles/qemu-dev.toml"


def check(run, out):
    code = rc(out, "apply")
    expect(code == 3, f"apply exit {code}, expected 3 (refused): {read_text(out / 'apply.err')[-1500:]}"
                      f"{read_text(out / 'apply.out')[-1500:]}")
    text = read_text(out / "apply.out") + read_text(out / "apply.err")
    expect("/mnt/busy" in text or "mounted" in text.lower(),
           f"the refusal does not name the mount: {text[-1500:]}")
    events(out / "apply.out")  # well-formed JSON events
    lun1 = next(d for d in run.disks if d.name == "lun1")
    expect(blank(run.disk_path(lun1)), "the free disk lun1 was written to although apply refused")
    check_full(run, out)
    check_exfat(run, out)


SCENARIO = Scenario(
    name="busy-disk",
    suite=True,  # passed in a guest: 135 s
    description="a candidate disk mounted elsewhere: apply refuses (exit 3), nothing written; then full-target and exfat-refused",
    disks=[Disk("lun0", size="1G", bus="scsi", lun=0, serial="data-lun0"),
           Disk("lun1", size="1G", bus="scsi", lun=1, serial="data-lun1")] + FULL_DISKS + EXFAT_DISKS,
    profiles={**FULL_PROFILES, **EXFAT_PROFILES},
    mask=["postgresql.service"],
    user_data=None,  # dbhost runs from the job: nothing here is about cloud-init
    steps=[Boot(job="""
d=/dev/$(lsblk -ndo NAME,SERIAL | awk '$2=="data-lun0"{print $1}')
mkfs.ext4 -q $d && mkdir -p /mnt/busy && mount $d /mnt/busy && echo hello >/mnt/busy/file
cp /etc/fstab "$VMTEST_OUT/fstab-before.txt"
systemctl start mariadb
""" + run_dbhost(f"apply --profile {PROFILE} --yes --output json", "apply") + """
check "the busy disk is still mounted with its file" grep -q hello /mnt/busy/file
check "fstab unchanged" cmp /etc/fstab "$VMTEST_OUT/fstab-before.txt"
check "no md array" sh -c '! grep -q "^md" /proc/mdstat 2>/dev/null'
check "MariaDB still on /var/lib/mysql" test "$(mysql -Nse 'SELECT @@datadir')" = /var/lib/mysql/
check "/datadrive not created or empty" sh -c '! test -e /datadrive || test -z "$(ls -A /datadrive)"'
ls -la /dev/disk/by-id/ >"$VMTEST_OUT/by-id.txt"
""" + FULL_JOB + EXFAT_JOB, check=check)],
)
