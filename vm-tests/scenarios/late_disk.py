"""late-disk: one data disk at boot; a second is hot-added through QMP ~20 s after cloud-init
starts `dbhost detect --wait-disks 120s --profile P` (P expects 2 disks at LUN 0 and 1).
dbhost must wait for it and then report both; the disk cannot be there before dbhost starts,
because the host only attaches it after the marker printed right before dbhost runs."""

from checks import check_inventory
from harness import GIB, Boot, Delay, Disk, HotAdd, Scenario, dbhost_runcmd, expect, read_json, read_text

PROFILE = """\
version = 1
description = "vm-tests late-disk: two data disks at LUN 0 and 1; the second is attached late"

[disks]
platform = "qemu"
luns = [0, 1]
expected-count = 2
wait-timeout = "120s"

[database]
engine = "none"
"""


def check(run, out):
    rc = read_text(out / "wait.rc").strip()
    expect(rc == "0", f"dbhost detect --wait-disks exited {rc}: {read_text(out / 'wait.err')[-800:]}")
    inv = read_json(out / "wait.out")
    check_inventory(inv, os_serial="os-disk", data={
        "data-early": {"lun": 0, "size": 2 * GIB, "transport": "scsi"},
        "data-late": {"lun": 1, "size": 2 * GIB, "transport": "scsi"},
    })


SCENARIO = Scenario(
    name="late-disk",
    description="a data disk hot-added (QMP device_add) ~20 s late; dbhost detect --wait-disks waits for it",
    disks=[Disk("early", size="2G", bus="scsi", lun=0, serial="data-early")],
    profiles={"vmtest-late-disk.toml": PROFILE},
    user_data={"runcmd": [
        "echo VMTEST-MARK waiting-for-disks > /dev/ttyS1",
        dbhost_runcmd("detect --wait-disks 120s --profile /usr/local/share/dbhost/profiles/vmtest-late-disk.toml "
                      "--output json", "wait"),
    ]},
    mask=["mariadb.service", "postgresql.service"],
    steps=[Boot(
        on_mark={"waiting-for-disks": [Delay(20), HotAdd(Disk("late", size="2G", bus="scsi", lun=1,
                                                                serial="data-late"))]},
        job="""
check "late disk attached (hot-add seen by the guest)" wait_until 180 sh -c 'ls /dev/disk/by-id | grep -q data-late'
check "dbhost waited and succeeded" sh -c 'cat "$VMTEST_OUT"/wait.out "$VMTEST_OUT"/wait.err | tail -c 1500; test "$(cat "$VMTEST_OUT"/wait.rc)" = 0'
""",
        check=check,
    )],
)
