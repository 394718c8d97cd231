"""On-disk signatures written by the real tools onto a disk image on the host (the refusal
claims' inputs). Every writer is the format's own mkfs/format tool from Debian's packages; a
missing tool fails the claim (scripts/vm-test.sh installs them). md superblocks need the kernel's
md driver, so those kinds are written by mdadm inside the guest (signatures.py).

KINDS: kind -> (minimum disk size, writer(image path), what dbhost's detect must say). The
expectation is a list of acceptable refusals: ("holds_signature", kind) or ("has_partitions",)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import MIB, ScenarioFailure


def sh(*args, input: bytes | None = None):
    if shutil.which(args[0]) is None:
        raise ScenarioFailure(f"{args[0]} is not installed on the host (it writes the signature under test)")
    p = subprocess.run(list(args), input=input, capture_output=True)
    if p.returncode != 0:
        raise ScenarioFailure(f"{' '.join(map(str, args))} failed ({p.returncode}): "
                              f"{p.stderr.decode(errors='replace')[-600:]}")


def with_loop(img: Path, fn):
    """Run fn(loop device) with the image attached to a loop device (tools that refuse files)."""
    if shutil.which("losetup") is None:
        raise ScenarioFailure("losetup is not installed on the host")
    p = subprocess.run(["losetup", "-f", "--show", str(img)], capture_output=True, text=True)
    if p.returncode != 0:
        raise ScenarioFailure(f"no loop device on the host for {img.name}: {p.stderr.strip()}")
    dev = p.stdout.strip()
    try:
        fn(dev)
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def luks(version: int):
    def w(img: Path):
        with tempfile.NamedTemporaryFile() as key:
            key.write(b"not-a-secret")
            key.flush()
            pbkdf = [] if version == 1 else ["--pbkdf", "pbkdf2"]
            sh("cryptsetup", "luksFormat", "-q", "--type", f"luks{version}", *pbkdf, "--pbkdf-force-iterations",
               "1000", "--key-file", key.name, str(img))
    return w


def iso(img: Path):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "src").mkdir()
        (Path(d) / "src" / "README").write_text("an ISO image written onto a data disk\n")
        sh("genisoimage", "-quiet", "-o", f"{d}/x.iso", f"{d}/src")
        sh("dd", f"if={d}/x.iso", f"of={img}", "conv=notrunc", "status=none")


def gpt_backup_only(img: Path):
    """A GPT whose primary header and table were overwritten (only the backup at the end is
    left): what a disk looks like after a careless `dd` over its start."""
    sh("sfdisk", "-q", str(img), input=b"label: gpt\n,,L\n")
    sh("dd", "if=/dev/zero", f"of={img}", "bs=512", "count=34", "conv=notrunc", "status=none")


def lvm2(img: Path):
    with_loop(img, lambda dev: sh("pvcreate", "-q", "-ff", "-y", dev))


SIG = "holds_signature"
KINDS = {
    "ext2": (64 * MIB, lambda p: sh("mkfs.ext2", "-q", "-F", str(p)), [(SIG, "ext2")]),
    "ext3": (64 * MIB, lambda p: sh("mkfs.ext3", "-q", "-F", str(p)), [(SIG, "ext3")]),
    "ext4": (64 * MIB, lambda p: sh("mkfs.ext4", "-q", "-F", str(p)), [(SIG, "ext4")]),
    "xfs": (320 * MIB, lambda p: sh("mkfs.xfs", "-q", "-f", str(p)), [(SIG, "xfs")]),
    "btrfs": (128 * MIB, lambda p: sh("mkfs.btrfs", "-q", "-f", str(p)), [(SIG, "btrfs")]),
    "vfat": (64 * MIB, lambda p: sh("mkfs.vfat", str(p)), [(SIG, "vfat")]),
    "ntfs": (64 * MIB, lambda p: sh("mkntfs", "-F", "-Q", "-q", str(p)), [(SIG, "ntfs")]),
    "exfat": (64 * MIB, lambda p: sh("mkfs.exfat", str(p)), [(SIG, "exfat")]),
    "f2fs": (64 * MIB, lambda p: sh("mkfs.f2fs", "-q", str(p)), [(SIG, "f2fs")]),
    "swap": (64 * MIB, lambda p: sh("mkswap", "-q", str(p)), [(SIG, "swap")]),
    "lvm2": (64 * MIB, lvm2, [(SIG, "lvm2")]),
    "luks1": (64 * MIB, luks(1), [(SIG, "luks")]),
    "luks2": (64 * MIB, luks(2), [(SIG, "luks")]),
    "bcache": (64 * MIB, lambda p: sh("make-bcache", "-B", str(p)), [(SIG, "bcache")]),
    "iso9660": (64 * MIB, iso, [(SIG, "iso9660")]),
    "mbr": (64 * MIB, lambda p: sh("sfdisk", "-q", str(p), input=b"label: dos\n,,L\n"),
            [("has_partitions",), (SIG, "mbr")]),
    "gpt": (64 * MIB, lambda p: sh("sfdisk", "-q", str(p), input=b"label: gpt\n,,L\n"),
            [("has_partitions",), (SIG, "gpt")]),
    "gpt-backup-only": (64 * MIB, gpt_backup_only, [(SIG, "gpt-backup")]),
}

# Kinds dbhost does not recognise yet (issue 13): their claims exist but stay out of the suite
# until the probe learns them.
NOT_YET = {"exfat", "f2fs"}
