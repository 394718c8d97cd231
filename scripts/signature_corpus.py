#!/usr/bin/env python3
"""Signature corpus: small disk images of every kind Debian's tools can make, judged by
`blkid -p` (util-linux, an independent prober) and compared with dbhost's verdict.

    python3 scripts/signature_corpus.py build DIR [KIND...]     # write KIND.img files into DIR
    python3 scripts/signature_corpus.py check --dbhost BIN      # build, judge, compare, print table
    python3 scripts/signature_corpus.py list                    # kinds, how each is made
    python3 scripts/signature_corpus.py selftest                # the judge catches bad verdicts

Reusable: `build(kind, path)` writes one image (sparse file); `KINDS` says how each is made and
what blkid calls it; vm-tests scenarios import this module to attach such images as data disks.

Images are made with the real tools (mkfs.*, cryptsetup, sgdisk, sfdisk, make-bcache, drbdmeta,
...) on plain files: no mounts. Only LVM's pvcreate needs a block device; it gets a loop device
when the host has them. A few kinds have no tool in Debian (BitLocker, VMFS, VDO, Stratis,
Oracle ASM, Ceph BlueStore, ZFS, HFS+, ReFS, dm-integrity without device-mapper): for those a
minimal header is written from the format's published layout ("synthetic"), and blkid still has
to recognise it, so the row checks our offsets against libblkid's.

The check passes when: every image blkid names a TYPE or PTTYPE for is refused by dbhost naming
the same kind (TYPE first, else PTTYPE); random bytes at the start are refused as unrecognized
data; an all-zero image is blank. With DBHOST_REQUIRE_ORACLES=1 a missing tool (the wrapper
scripts/signature-corpus.sh installs them) or a missing blkid fails instead of skipping.
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

MIB = 1 << 20

# blkid TYPE/PTTYPE -> dbhost kind
BLKID_TO_DBHOST = {
    "crypto_LUKS": "luks", "LVM2_member": "lvm2", "zfs_member": "zfs", "BitLocker": "bitlocker",
    "VMFS": "vmfs", "VMFS_volume_member": "vmfs-volume", "ceph_bluestore": "ceph-bluestore",
    "DM_integrity": "dm-integrity", "ReFS": "refs", "squashfs3": "squashfs", "dos": "mbr",
    "linux_raid_member": "md", "swsuspend": "swsuspend",
}

# Debian packages that provide the tools (installed by scripts/signature-corpus.sh).
PACKAGES = [
    "util-linux", "fdisk", "e2fsprogs", "xfsprogs", "btrfs-progs", "dosfstools", "exfatprogs",
    "ntfs-3g", "f2fs-tools", "jfsutils", "reiserfsprogs", "reiser4progs", "nilfs-tools",
    "udftools", "squashfs-tools", "erofs-utils", "genisoimage", "ocfs2-tools", "gfs2-utils",
    "mtd-utils", "cryptsetup-bin", "gdisk", "bcache-tools", "drbd-utils", "lvm2", "hfsutils",
    "genromfs", "apfsprogs", "util-linux-extra", "mount",  # mount: losetup (the LVM row)
]


def sh(*args, **kw):
    """Run a tool quietly; raise with its output when it fails."""
    if "input" not in kw:
        kw["stdin"] = subprocess.DEVNULL
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))}: exit {p.returncode}: "
                           f"{(p.stderr or p.stdout).strip()[-400:]}")
    return p.stdout


def sparse(path: Path, size: int):
    with open(path, "wb") as f:
        f.truncate(size)


def poke(path: Path, off: int, data: bytes):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)


def content_dir(tmp: Path) -> Path:
    """A few files for the image builders that pack a directory."""
    d = tmp / "content"
    if not d.exists():
        d.mkdir()
        (d / "hello.txt").write_text("hello\n" * 100)
        (d / "sub").mkdir()
        (d / "sub" / "data.bin").write_bytes(bytes(range(256)) * 64)
    return d


@dataclass
class Kind:
    name: str
    size: int
    tools: List[str]  # executables the builder runs ([] = synthetic, pure Python)
    make: Callable[[Path, Path], None]  # (image path, scratch dir)
    note: str = ""

    @property
    def synthetic(self) -> bool:
        return not self.tools


def mkfs(*args):
    """A builder that runs `args... IMAGE` on a sparse file."""
    return lambda img, tmp: sh(*args, img)


def packed(tool_args):
    """A builder for tools that pack a directory: tool_args(img, dir) -> argv."""
    return lambda img, tmp: sh(*tool_args(img, content_dir(tmp)))


def gpt_backup_only(img: Path, tmp: Path):
    sh("sgdisk", "-n1:0:0", img)
    poke(img, 0, bytes(MIB))


def mbr(img: Path, tmp: Path):
    sh("sfdisk", "-q", img, input=",,L\n")


def drbd(version: str):
    def make(img: Path, tmp: Path):
        args = ["drbdmeta", "--force", "0", version, img, "internal", "create-md"]
        if version == "v09":
            args.append("1")
        subprocess.run([str(a) for a in args], input="yes\nyes\n", capture_output=True,
                       text=True, check=True)
    return make


def pvcreate(img: Path, tmp: Path):
    """pvcreate refuses plain files: a loop device over the image, detached at once after."""
    loop = sh("losetup", "-f", "--show", img).strip()
    try:
        sh("pvcreate", "-q", "-ff", "-y", "--config", "devices { filter = [ \"a|.*|\" ] }", loop)
    finally:
        subprocess.run(["losetup", "-d", loop], capture_output=True)


def romfs(img: Path, tmp: Path):
    sh("genromfs", "-f", img, "-d", content_dir(tmp))


def ubi(img: Path, tmp: Path):
    vol = tmp / "ubifs.vol"
    sh("mkfs.ubifs", "-q", "-r", content_dir(tmp), "-m", "2048", "-e", "126976", "-c", "64",
       "-o", vol)
    cfg = tmp / "ubi.cfg"
    cfg.write_text(f"[v]\nmode=ubi\nimage={vol}\nvol_id=0\nvol_type=dynamic\nvol_name=v\n"
                   "vol_flags=autoresize\n")
    sh("ubinize", "-o", img, "-m", "2048", "-p", "128KiB", "-s", "2048", cfg)


# --- synthetic headers, for kinds no Debian package can make (layouts: the formats' own docs
# and libblkid's probes, which the row then checks).

def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def synthetic(*writes):
    """A builder that writes (offset, bytes) pairs into a sparse image; a negative offset is
    from the end."""
    def make(img: Path, tmp: Path):
        size = img.stat().st_size
        for off, data in writes:
            poke(img, off if off >= 0 else size + off, data)
    return make


def stratis_sigblock() -> bytes:
    sb = bytearray(512)
    sb[4:20] = b"!Stra0tis\x86\xff\x02^\x41rh"
    sb[20:28] = struct.pack("<Q", 256 * MIB // 512)  # sectors
    sb[32:64] = b"0123456789abcdef0123456789abcdef"  # pool uuid (hex text)
    sb[64:96] = b"fedcba9876543210fedcba9876543210"  # device uuid
    sb[96:104] = struct.pack("<Q", 8192)  # mda size
    sb[0:4] = struct.pack("<I", crc32c(bytes(sb[4:])))
    return bytes(sb)


def zfs_uberblocks() -> list:
    # 2.38's blkid wants at least 4 uberblocks (magic 0x00bab10c, version at +8) in the rings
    # at label + 128 KiB, 1 KiB slots.
    ub = struct.pack("<QQ", 0x00BAB10C, 5000)
    return [(128 * 1024 + i * 1024, ub) for i in range(4)]


def bitlocker() -> list:
    hdr = bytearray(512)
    hdr[0:11] = b"\xeb\x58\x90-FVE-FS-"
    hdr[176:184] = struct.pack("<Q", MIB)  # FVE metadata offset
    hdr[510:512] = b"\x55\xaa"
    fve = b"-FVE-FS-" + struct.pack("<HH", 64, 2)  # signature, size, version 2
    return [(0, bytes(hdr)), (MIB, fve)]


def hfsplus() -> list:
    vh = bytearray(512)
    vh[0:4] = b"H+\x00\x04"
    vh[40:44] = struct.pack(">I", 4096)  # block size
    vh[44:48] = struct.pack(">I", 8192)  # total blocks
    return [(1024, bytes(vh))]


def k(name, size, tools, make, note=""):
    return Kind(name, size, tools, make, note)


KINDS = [
    k("zeros", 64 * MIB, [], lambda img, tmp: None, "all zeros: must be blank"),
    k("random-4mib", 64 * MIB, [], lambda img, tmp: poke(img, 0, os.urandom(4 * MIB)),
      "4 MiB of random bytes at the start: unrecognized data"),
    k("random-after-wiped-head", 256 * MIB, [],
      lambda img, tmp: poke(img, MIB, os.urandom(32 * MIB)),
      "first MiB zeroed (a careless wipe), 32 MiB of random bytes after it: unrecognized data"),
    k("ext2", 64 * MIB, ["mkfs.ext2"], mkfs("mkfs.ext2", "-q", "-F")),
    k("ext3", 64 * MIB, ["mkfs.ext3"], mkfs("mkfs.ext3", "-q", "-F")),
    k("ext4", 64 * MIB, ["mkfs.ext4"], mkfs("mkfs.ext4", "-q", "-F")),
    k("jbd", 64 * MIB, ["mke2fs"], mkfs("mke2fs", "-q", "-F", "-O", "journal_dev")),
    k("xfs", 320 * MIB, ["mkfs.xfs"], mkfs("mkfs.xfs", "-q", "-f")),
    k("btrfs", 128 * MIB, ["mkfs.btrfs"], mkfs("mkfs.btrfs", "-q", "-f")),
    k("swap", 64 * MIB, ["mkswap"], mkfs("mkswap", "-q")),
    k("vfat", 64 * MIB, ["mkfs.vfat"], mkfs("mkfs.vfat")),
    k("exfat", 64 * MIB, ["mkfs.exfat"], mkfs("mkfs.exfat")),
    k("ntfs", 64 * MIB, ["mkfs.ntfs"], mkfs("mkfs.ntfs", "-q", "-F", "-f")),
    k("f2fs", 64 * MIB, ["mkfs.f2fs"], mkfs("mkfs.f2fs", "-q", "-f")),
    k("jfs", 64 * MIB, ["mkfs.jfs"], mkfs("mkfs.jfs", "-q")),
    k("reiserfs", 64 * MIB, ["mkfs.reiserfs"], mkfs("mkfs.reiserfs", "-q", "-f")),
    k("reiser4", 64 * MIB, ["mkfs.reiser4"], mkfs("mkfs.reiser4", "-y", "-f")),
    k("nilfs2", 160 * MIB, ["mkfs.nilfs2"], mkfs("mkfs.nilfs2", "-q", "-f", "-B", "16")),
    k("udf", 64 * MIB, ["mkfs.udf"], mkfs("mkfs.udf")),
    k("minix", 64 * MIB, ["mkfs.minix"], mkfs("mkfs.minix")),
    k("bfs", 16 * MIB, ["mkfs.bfs"], mkfs("mkfs.bfs")),
    k("ocfs2", 128 * MIB, ["mkfs.ocfs2"], mkfs("mkfs.ocfs2", "-q", "-F", "-M", "local")),
    k("gfs2", 256 * MIB, ["mkfs.gfs2"], mkfs("mkfs.gfs2", "-O", "-p", "lock_nolock")),
    k("hfs", 64 * MIB, ["hformat"], mkfs("hformat", "-l", "corpus")),
    k("apfs", 512 * MIB, ["mkapfs"], mkfs("mkapfs")),  # mkapfs refuses "small containers"
    k("cramfs", 0, ["mkfs.cramfs"], packed(lambda img, d: ["mkfs.cramfs", d, img])),
    k("squashfs", 0, ["mksquashfs"],
      packed(lambda img, d: ["mksquashfs", d, img, "-noappend", "-quiet", "-no-progress"])),
    k("erofs", 0, ["mkfs.erofs"], packed(lambda img, d: ["mkfs.erofs", img, d])),
    k("iso9660", 0, ["genisoimage"], packed(lambda img, d: ["genisoimage", "-quiet", "-o", img, d])),
    k("romfs", 0, ["genromfs"], romfs),
    k("ubifs", 0, ["mkfs.ubifs"],
      packed(lambda img, d: ["mkfs.ubifs", "-q", "-r", d, "-m", "2048", "-e", "126976", "-c",
                             "64", "-o", img])),
    k("ubi", 0, ["mkfs.ubifs", "ubinize"], ubi),
    k("luks1", 64 * MIB, ["cryptsetup"],
      lambda img, tmp: sh("cryptsetup", "luksFormat", "-q", "--type", "luks1",
                          "--pbkdf-force-iterations", "1000", "--key-file", "-", img,
                          input="corpus")),
    k("luks2", 64 * MIB, ["cryptsetup"],
      lambda img, tmp: sh("cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf",
                          "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", "-", img,
                          input="corpus")),
    k("bcache-backing", 64 * MIB, ["make-bcache"], mkfs("make-bcache", "-B")),
    k("bcache-cache", 64 * MIB, ["make-bcache"], mkfs("make-bcache", "-C")),
    k("drbd-v08", 64 * MIB, ["drbdmeta"], drbd("v08")),
    k("drbd-v09", 64 * MIB, ["drbdmeta"], drbd("v09")),
    k("gpt", 64 * MIB, ["sgdisk"], mkfs("sgdisk", "-n1:0:0")),
    k("gpt-backup-only", 64 * MIB, ["sgdisk"], gpt_backup_only,
      "sgdisk, then the first MiB zeroed"),
    k("mbr", 64 * MIB, ["sfdisk"], mbr),
    k("lvm2", 64 * MIB, ["pvcreate", "losetup"], pvcreate, "pvcreate on a loop device"),
    # synthetic: no tool in Debian
    k("bitlocker", 64 * MIB, [], synthetic(*bitlocker())),
    k("vmfs", 64 * MIB, [], synthetic((MIB, b"\x0d\xd0\x01\xc0"),
                                      (2 * MIB, b"\x5e\xf1\xab\x2f"))),
    k("vdo", 64 * MIB, [], synthetic((0, b"dmvdo001" + bytes(range(1, 33))))),
    k("stratis", 64 * MIB, [], synthetic((512, stratis_sigblock()), (9 * 512, stratis_sigblock()))),
    k("oracleasm", 64 * MIB, [], synthetic((32, b"ORCLDISK" + b"CORPUS01"))),
    k("ceph-bluestore", 64 * MIB, [],
      synthetic((0, b"bluestore block device\n01234567-89ab-cdef-0123-456789abcdef\n"))),
    k("dm-integrity", 64 * MIB, [], synthetic((0, b"integrt\0\x01\x00\x04\x00"))),
    k("zfs", 64 * MIB, [], synthetic(*zfs_uberblocks())),
    k("hfsplus", 64 * MIB, [], synthetic(*hfsplus())),
    k("refs", 64 * MIB, [], synthetic((0, b"\0\0\0ReFS\0" + bytes(8)))),
]
BY_NAME = {x.name: x for x in KINDS}


def missing_tools(kind: Kind) -> List[str]:
    return [t for t in kind.tools if not shutil.which(t)]


def build(kind: str, path: Path, scratch: Optional[Path] = None) -> Path:
    """Write one image of `kind` at `path` (sparse). Raises when a tool is missing or fails."""
    x = BY_NAME[kind]
    miss = missing_tools(x)
    if miss:
        raise FileNotFoundError(f"{kind}: missing {', '.join(miss)} (scripts/signature-corpus.sh installs it)")
    path = Path(path)
    if path.exists():
        path.unlink()
    if x.size:
        sparse(path, x.size)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        x.make(path, Path(tmp))
    return path


def blkid(img: Path) -> dict:
    p = subprocess.run(["blkid", "-p", "-o", "export", str(img)], capture_output=True, text=True)
    out = {}
    for line in p.stdout.splitlines():
        if "=" in line:
            key, val = line.split("=", 1)
            out[key] = val
    return out


def dbhost_probe(bin_: str, imgs: List[Path]) -> List[dict]:
    p = subprocess.run([bin_, "--output", "json", "debug", "probe", *map(str, imgs)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"dbhost debug probe: exit {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def judge(name: str, b: dict, d: dict) -> Optional[str]:
    """None when dbhost's verdict agrees with blkid's; else why not."""
    kinds = [s["kind"] for s in d["signatures"]]
    named = b.get("TYPE") or b.get("PTTYPE")
    if name == "zeros":
        return None if d["verdict"] == "blank" and not named else "an all-zero image must be blank"
    if name.startswith("random"):
        ok = d["verdict"] == "refused" and any(r["reason"] == "unrecognized_data"
                                               for r in d["refusals"])
        return None if ok else "random bytes must be refused as unrecognized data"
    if not named:
        # blkid names nothing (e.g. a GPT whose primary header was wiped): the bytes are still
        # there, so dbhost must still refuse.
        return None if d["verdict"] == "refused" else "non-zero image not refused"
    want = BLKID_TO_DBHOST.get(named, named)
    if d["verdict"] != "refused":
        return f"dbhost says {d['verdict']}, blkid says {named}"
    if not any(k == want or k.startswith(want + "-") for k in kinds):
        return f"dbhost names {kinds or 'no kind'}, blkid says {named} (dbhost kind {want})"
    return None


def check(bin_: str, only: List[str]) -> int:
    require = os.environ.get("DBHOST_REQUIRE_ORACLES") == "1"
    if not shutil.which("blkid"):
        print("signature corpus: blkid (util-linux) missing", file=sys.stderr)
        return 1 if require else 0
    rows, failures, skipped = [], [], []
    with tempfile.TemporaryDirectory(prefix="dbhost-corpus-") as tmp:
        tmp = Path(tmp)
        built = []
        for x in KINDS:
            if only and x.name not in only:
                continue
            img = tmp / f"{x.name}.img"
            try:
                build(x.name, img, tmp)
                built.append((x, img))
            except FileNotFoundError as e:
                skipped.append(x.name)
                rows.append((x, "-", f"SKIP: {e}"))
                if require:
                    failures.append(f"{x.name}: {e}")
            except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
                failures.append(f"{x.name}: building the image failed: {e}")
                rows.append((x, "-", "BUILD FAILED"))
        probes = dbhost_probe(bin_, [img for _, img in built]) if built else []
        for (x, img), d in zip(built, probes):
            b = blkid(img)
            said = " ".join(f"{key}={b[key]}" for key in ("TYPE", "PTTYPE") if key in b) or "nothing"
            kinds = ",".join(s["kind"] for s in d["signatures"])
            if d["verdict"] == "refused":
                ours = f"refused: {kinds}" if kinds else "refused: unrecognized data"
                if kinds and d.get("nonzero_at") is not None:
                    ours += f" (non-zero at {d['nonzero_at']})"
            else:
                ours = d["verdict"]
            why = judge(x.name, b, d)
            if why:
                failures.append(f"{x.name}: {why}")
                ours += "  <-- MISMATCH"
            rows.append((x, said, ours))
    w = max(len(x.name) + (12 if x.synthetic and x.name not in ("zeros",) and
                           not x.name.startswith("random") else 0) for x, _, _ in rows)
    print(f"| {'content':<{w}} | blkid -p says | dbhost says |")
    print(f"|{'-' * (w + 2)}|---|---|")
    for x, said, ours in rows:
        label = x.name + (" (synthetic)" if x.synthetic and x.name != "zeros" and
                          not x.name.startswith("random") else "")
        print(f"| {label:<{w}} | {said} | {ours} |")
    print(f"\n{len(rows)} images, {len(skipped)} skipped, {len(failures)} failed")
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    return 1 if failures else 0


def selftest() -> int:
    """The judge must be able to fail: feed it verdicts a broken dbhost would give."""
    def d(verdict, kinds=(), unrecognized=False):
        return {"verdict": verdict, "signatures": [{"kind": x} for x in kinds],
                "refusals": [{"reason": "unrecognized_data"}] if unrecognized else []}
    bad = [
        ("exfat", {"TYPE": "exfat"}, d("blank")),  # the data-loss bug this corpus guards
        ("f2fs", {"TYPE": "f2fs"}, d("refused", unrecognized=True)),  # refused, kind not named
        ("luks1", {"TYPE": "crypto_LUKS"}, d("refused", ["ext4"])),  # the wrong kind
        ("random-4mib", {}, d("blank")),
        ("zeros", {}, d("refused", unrecognized=True)),
        ("gpt-backup-only", {}, d("blank")),
    ]
    good = [
        ("exfat", {"TYPE": "exfat", "PTTYPE": "dos"}, d("refused", ["exfat"])),
        ("luks2", {"TYPE": "crypto_LUKS"}, d("refused", ["luks", "luks2-secondary"])),
        ("gpt", {"PTTYPE": "gpt"}, d("refused", ["mbr", "gpt"])),
        ("random-4mib", {}, d("refused", unrecognized=True)),
        ("zeros", {}, d("blank")),
    ]
    wrong = [n for n, b, v in bad if judge(n, b, v) is None]
    wrong += [n for n, b, v in good if judge(n, b, v) is not None]
    if wrong:
        print(f"signature corpus selftest: the judge is wrong about {wrong}", file=sys.stderr)
        return 1
    print(f"signature corpus selftest: {len(bad)} bad verdicts caught, {len(good)} good accepted")
    return 0


def main(argv: List[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "selftest":
        return selftest()
    if cmd == "list":
        for x in KINDS:
            how = "synthetic header" if x.synthetic else " ".join(x.tools)
            print(f"{x.name:<18} {how}{'  (' + x.note + ')' if x.note else ''}")
        return 0
    if cmd == "build":
        out = Path(rest[0])
        out.mkdir(parents=True, exist_ok=True)
        for name in rest[1:] or [x.name for x in KINDS]:
            print(build(name, out / f"{name}.img", out))
        return 0
    if cmd == "check":
        if len(rest) < 2 or rest[0] != "--dbhost":
            print("usage: check --dbhost BIN [KIND...]", file=sys.stderr)
            return 2
        return check(rest[1], rest[2:])
    print(f"unknown command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
