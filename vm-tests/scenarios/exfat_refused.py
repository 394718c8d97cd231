"""exfat-refused: a data disk formatted exFAT on the host (mkfs.exfat through
scripts/signature_corpus.py, the signature corpus's builder) is attached as a candidate. detect
must refuse it naming exfat, apply must exit 3 naming it with the --wipe hint, and the disk
image must be byte-for-byte unchanged on the host (sha256 before and after).

Then the hint is taken at its word on a second exFAT disk (a profile of its own: one disk, no
array, ext4, no database): `plan` without --wipe refuses, `apply --wipe` clears it and makes the
filesystem, a second `apply --wipe` changes nothing (it adopts its own filesystem, never wipes
again), and the host sees the image changed.

In the suite this runs in busy-disk's boot (JOB, check, DISKS and PROFILES here): its disk has
serial exfat-lun4, picked by a profile of its own, so the other profiles never see it."""

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import events, rc, run_dbhost, summary  # noqa: E402
from harness import REPO, Boot, Disk, Scenario, expect, read_text  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
import signature_corpus  # noqa: E402

PROFILE_NAME = "vmtest-exfat.toml"
PROFILE = f"/usr/local/share/dbhost/profiles/{PROFILE_NAME}"
# qemu-dev.toml picking the exFAT disk only (and small enough to be selected, so the refusal is
# about its contents, not its size)
PROFILES = {PROFILE_NAME: (REPO / "profiles" / "qemu-dev.toml").read_text()
            .replace('serial = ["data*", "vdata*", "nvme-data*"]', 'serial = ["exfat*"]')
            .replace('min-size = "128M"', 'min-size = "32M"')}
assert 'serial = ["exfat*"]' in PROFILES[PROFILE_NAME], "qemu-dev.toml's serial line changed"
assert 'min-size = "32M"' in PROFILES[PROFILE_NAME], "qemu-dev.toml's min-size line changed"
WIPE_NAME = "vmtest-wipe.toml"
WIPE_PROFILE = f"/usr/local/share/dbhost/profiles/{WIPE_NAME}"
PROFILES[WIPE_NAME] = """version = 1
description = "vm-tests: one disk that holds data, cleared with --wipe"
[disks]
platform = "any"
allowed-cache-modes = ["none", "readonly", "unknown"]
serial = ["wipe-lun5"]
min-size = "32M"
expected-count = 1
wait-timeout = "30s"
[array]
level = "none"
name = "wiped"
[filesystem]
type = "ext4"
label = "wiped"
mount-point = "/mnt/wiped"
[database]
engine = "none"
[tuning]
enabled = false
"""

# sha256 of the image as made on the host, recorded when the harness creates the disk.
_made = {}


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def exfat_image(key: str = "") -> str:
    """Called by the harness when it creates the disk: mkfs.exfat on a 64 MiB file."""
    d = Path(tempfile.mkdtemp(prefix="dbhost-exfat-"))
    img = signature_corpus.build("exfat", d / "exfat.img", d)
    _made["sha256" + key] = sha256(img)
    _made.setdefault("paths", []).append(img)
    return str(img)


DISKS = [Disk("exfat4", size="64M", bus="scsi", lun=4, serial="exfat-lun4", image=exfat_image),
         Disk("wipe5", size="64M", bus="scsi", lun=5, serial="wipe-lun5",
              image=lambda: exfat_image("-wipe"))]

JOB = f"""
d=/dev/$(lsblk -ndo NAME,SERIAL | awk '$2=="exfat-lun4"{{print $1}}')
echo "$d" >"$VMTEST_OUT/exfat-dev.txt"
""" + run_dbhost("detect --output json", "detect-exfat") + run_dbhost(
    f"apply --profile {PROFILE} --yes --output json", "apply-exfat") + """
check "exfat: no md array" sh -c '! grep -q "^md" /proc/mdstat 2>/dev/null'
w=/dev/$(lsblk -ndo NAME,SERIAL | awk '$2=="wipe-lun5"{print $1}')
""" + run_dbhost(f"plan --profile {WIPE_PROFILE} --output json", "plan-nowipe") + run_dbhost(
    f"plan --profile {WIPE_PROFILE} --wipe --output json", "plan-wipe") + run_dbhost(
    f"apply --profile {WIPE_PROFILE} --yes --wipe --output json", "apply-wipe") + run_dbhost(
    f"apply --profile {WIPE_PROFILE} --yes --wipe --output json", "apply-wipe-2") + """
check "--wipe: the cleared disk holds ext4 now" test "$(blkid -p -s TYPE -o value "$w")" = ext4
check "--wipe: mounted at /mnt/wiped" sh -c "findmnt -n -o SOURCE /mnt/wiped | grep -q ."
"""


def check(run, out):
    code = rc(out, "apply-exfat")
    text = read_text(out / "apply-exfat.out") + read_text(out / "apply-exfat.err")
    expect(code == 3, f"apply exit {code}, expected 3 (refused): {text[-1500:]}")
    expect("holds a exfat signature at byte 3" in text and "--wipe" in text,
           f"the refusal does not name exFAT with the --wipe hint: {text[-1500:]}")
    evs = events(out / "apply-exfat.out")
    expect(any(e.get("event") == "refused" for e in evs), "no refused event in apply's JSON")
    dev = read_text(out / "exfat-dev.txt").strip().rsplit("/", 1)[-1]
    inv = json.loads(read_text(out / "detect-exfat.out"))
    disk = next((x for x in inv["disks"] if x["name"] == dev), None)
    expect(disk is not None, f"detect lists no {dev}")
    expect({"reason": "holds_signature", "kind": "exfat", "offset": 3} in disk["refusals"],
           f"detect does not refuse {dev} as exFAT: {disk['refusals']}")
    d = next(x for x in run.disks if x.name == "exfat4")
    after = sha256(run.disk_path(d))
    expect(after == _made.get("sha256"),
           f"the exFAT disk changed: sha256 {_made.get('sha256')} before, {after} after")
    check_wipe(run, out)
    for src in _made.pop("paths", []):
        src.unlink(missing_ok=True)
        src.parent.rmdir()


def check_wipe(run, out):
    """The --wipe hint works: refused without it, cleared and used with it, idempotent."""
    expect(rc(out, "plan-nowipe") == 3, f"plan without --wipe exit {rc(out, 'plan-nowipe')}, expected 3")
    plan = json.loads(read_text(out / "plan-wipe.out"))["plan"]
    expect(rc(out, "plan-wipe") == 0 and [m["wipe"] for m in plan["members"]] == [True],
           f"plan --wipe does not clear the exFAT disk: {read_text(out / 'plan-wipe.out')[-1500:]}")
    code = rc(out, "apply-wipe")
    expect(code == 0, f"apply --wipe exit {code}: {read_text(out / 'apply-wipe.err')[-1500:]}"
                      f"{read_text(out / 'apply-wipe.out')[-1500:]}")
    s2 = summary(out / "apply-wipe-2.out")
    expect(rc(out, "apply-wipe-2") == 0 and s2["changed"] == 0,
           f"a second apply --wipe changed something (it must adopt, not wipe again): {s2}")
    d = next(x for x in run.disks if x.name == "wipe5")
    expect(sha256(run.disk_path(d)) != _made.get("sha256-wipe"), "the --wipe disk is unchanged")


SCENARIO = Scenario(
    name="exfat-refused",
    suite=False,  # in the suite inside busy-disk's boot
    description="an exFAT data disk made on the host: detect and apply refuse it, sha256 unchanged; --wipe clears another",
    disks=DISKS,
    profiles=PROFILES,
    mask=["postgresql.service"],
    user_data=None,  # dbhost runs from the job: nothing here is about cloud-init
    steps=[Boot(job=JOB, check=check)],
)
