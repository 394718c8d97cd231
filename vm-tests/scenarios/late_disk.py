"""late-disk: one data disk at boot; a second is hot-added through QMP ~20 s after cloud-init
starts `dbhost detect --wait-disks 120s --profile P` (P expects 2 disks at LUN 0 and 1).
dbhost must wait for it and then report both; the disk cannot be there before dbhost starts,
because the host only attaches it after the marker printed right before dbhost runs.

In the suite this is the start of roomsy's first boot (RUNCMD, on_mark(), check_wait(): roomsy's
LUN 1 disk is the late one, and the apply that follows builds the array over both); run
`late-disk` by name for the standalone scenario."""

from checks import check_inventory
from harness import GIB, Boot, Delay, Disk, HotAdd, Scenario, dbhost_runcmd, expect, read_json, read_text

PROFILE_NAME = "vmtest-late-disk.toml"
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

# cloud-init runcmd entries: the marker, then dbhost waiting for the disks (wait.out/.err/.rc)
RUNCMD = [
    "echo VMTEST-MARK waiting-for-disks > /dev/ttyS1",
    dbhost_runcmd(f"detect --wait-disks 120s --profile /usr/local/share/dbhost/profiles/{PROFILE_NAME} "
                  "--output json", "wait"),
]

JOB = """
check "late disk attached (hot-add seen by the guest)" wait_until 180 sh -c 'ls /dev/disk/by-id | grep -q {serial}'
check "dbhost waited and succeeded" sh -c 'cat "$VMTEST_OUT"/wait.out "$VMTEST_OUT"/wait.err | tail -c 1500; test "$(cat "$VMTEST_OUT"/wait.rc)" = 0'
"""


def on_mark(late: Disk) -> dict:
    """Boot.on_mark: attach LATE 20 s after the guest said dbhost is about to wait."""
    return {"waiting-for-disks": [Delay(20), HotAdd(late)]}


def check_wait(out, early: Disk, late: Disk, size: int):
    rc = read_text(out / "wait.rc").strip()
    expect(rc == "0", f"dbhost detect --wait-disks exited {rc}: {read_text(out / 'wait.err')[-800:]}")
    inv = read_json(out / "wait.out")
    check_inventory(inv, os_serial="os-disk", data={
        early.serial: {"lun": early.lun, "size": size, "transport": "scsi"},
        late.serial: {"lun": late.lun, "size": size, "transport": "scsi"},
    })


EARLY = Disk("early", size="2G", bus="scsi", lun=0, serial="data-early")
LATE = Disk("late", size="2G", bus="scsi", lun=1, serial="data-late")

SCENARIO = Scenario(
    name="late-disk",
    suite=False,  # in the suite at the start of roomsy's first boot
    description="a data disk hot-added (QMP device_add) ~20 s late; dbhost detect --wait-disks waits for it",
    disks=[EARLY],
    profiles={PROFILE_NAME: PROFILE},
    user_data={"runcmd": RUNCMD},
    mask=["mariadb.service", "postgresql.service"],
    steps=[Boot(
        on_mark=on_mark(LATE),
        job=JOB.format(serial=LATE.serial),
        check=lambda run, out: check_wait(out, EARLY, LATE, 2 * GIB),
    )],
)
