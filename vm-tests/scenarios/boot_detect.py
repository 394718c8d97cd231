"""boot-detect: the OS disk, 2 virtio-scsi data disks at LUN 0/1 and an NVMe disk; the job runs
`dbhost detect --output json` (cloud-init running dbhost is covered by roomsy, postgres-move,
late-disk and capture-redeploy; here it would only add a minute of TCG); the host checks the
exact classification.

The LUN 1 disk is attached first and is smaller, so neither device letters nor attach order can
stand in for the LUN mapping.

The same boot then runs `deb-install` (deb_install.py: the .deb installs, works and is removed
with dpkg), which saves that scenario's own boot in the suite."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check_inventory  # noqa: E402
from deb_install import JOB as DEB_JOB  # noqa: E402
from deb_install import build_deb  # noqa: E402
from deb_install import check as check_deb  # noqa: E402
from _mariadb import run_dbhost  # noqa: E402
from harness import GIB, Boot, Disk, Host, Scenario, expect, read_json, read_text  # noqa: E402

DATA = {
    "azdata-a": {"lun": 0, "size": 3 * GIB, "transport": "scsi"},
    "azdata-b": {"lun": 1, "size": 2 * GIB, "transport": "scsi"},
    "nvme-data0": {"size": 1 * GIB, "transport": "nvme"},
}


def check(run, out):
    rc = read_text(out / "detect.rc").strip()
    expect(rc == "0", f"dbhost detect --output json exited {rc}: {read_text(out / 'detect.err')[-800:]}")
    inv = read_json(out / "detect.out")
    check_inventory(inv, os_serial="os-disk", data=DATA)
    rc = read_text(out / "detect-text.rc").strip()
    expect(rc == "0", f"dbhost detect (text) exited {rc}: {read_text(out / 'detect-text.err')[-800:]}")
    check_deb(run, out)


SCENARIO = Scenario(
    name="boot-detect",
    description="OS disk + 2 virtio-scsi LUNs + 1 NVMe; dbhost detect; exact classification; then deb-install",
    disks=[
        Disk("lun1", size="2G", bus="scsi", lun=1, serial="azdata-b"),
        Disk("lun0", size="3G", bus="scsi", lun=0, serial="azdata-a"),
        Disk("nvme0", size="1G", bus="nvme", serial="nvme-data0"),
    ],
    mask=["mariadb.service", "postgresql.service"],
    memory_mb=1024,  # no database runs here; a smaller guest boots faster under TCG
    steps=[Host(build_deb), Boot(
        job="""
check "dbhost is installed" test -x /usr/local/sbin/dbhost
check "dbhost is static" sh -c 'file -L /usr/local/sbin/dbhost | grep -Eq "static(ally|-pie) linked"'
""" + run_dbhost("detect --output json", "detect") + run_dbhost("detect", "detect-text") + """
check "mdadm absent" sh -c '! command -v mdadm'
check "LUN 0 visible" test -e /dev/disk/by-path/*-scsi-0:0:0:0
check "LUN 1 visible" sh -c 'ls /dev/disk/by-path/ | grep -q -- "-scsi-0:0:0:1$"'
check "nvme visible" sh -c 'ls /dev/disk/by-id/ | grep -q nvme-data0'
""" + DEB_JOB,
        check=check,
    )],
)
