#!/usr/bin/env python3
"""Build (or reuse) the micro-tier guest: a kernel plus a busybox initramfs that carries the md,
raid0, xfs, ext4, virtio, NVMe and 9p modules and a few dynamic tools from the guest image
(mdadm and mkfs as oracles and for dbhost's own mkfs step, udev for the /dev/disk links), with
their libraries. No systemd, no database: a micro guest boots in seconds under TCG.

    python3 vm-tests/micro/build.py --image DIR [--kernel VMLINUZ] [--root IMG] [--name NAME]

--image   a directory made by scripts/vm-image.sh (vmlinuz, kver, root-mdadm.img)
--kernel  another kernel to boot (default: DIR/vmlinuz); its modules are read from --root
--root    the ext4 image that holds the tools and /usr/lib/modules/<kver> (default:
          DIR/root-mdadm.img); read with debugfs, never mounted
--name    a label for this kernel in scenario names (default: "default")

Prints the output directory on the last line of stdout: $DBHOST_VM_CACHE/micro-<key>/ with
vmlinuz, initrd.img, kver, name, manifest.txt. <key> covers this script, the init script, and the
identity of the inputs (paths, sizes, mtimes), so a second run with the same inputs is instant.
Needs debugfs (e2fsprogs), readelf (binutils), cpio, a static busybox.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Programs from the image (with their libraries). mdadm, blkid, dumpe2fs, xfs_db are oracles;
# mkfs.* and mount are what dbhost runs; udev makes /dev/disk/by-id like a real host; systemctl
# lets `dbhost apply` enable its boot unit offline (SYSTEMD_OFFLINE=1: there is no systemd here).
TOOLS = [
    "/usr/bin/bash", "/usr/sbin/mdadm", "/usr/sbin/mkfs.xfs", "/usr/sbin/xfs_db", "/usr/sbin/xfs_info",
    "/usr/sbin/xfs_spaceman", "/usr/sbin/mkfs.ext4", "/usr/sbin/mke2fs", "/usr/sbin/dumpe2fs",
    "/usr/sbin/debugfs", "/usr/sbin/blkid", "/usr/sbin/wipefs", "/usr/sbin/blockdev", "/usr/sbin/sfdisk",
    "/usr/sbin/mkswap", "/usr/sbin/swapon", "/usr/sbin/swapoff", "/usr/bin/lsblk",
    "/usr/bin/mount", "/usr/bin/umount", "/usr/bin/mountpoint", "/usr/bin/findmnt", "/usr/sbin/losetup",
    "/usr/sbin/modprobe", "/usr/sbin/insmod", "/usr/sbin/rmmod", "/usr/sbin/lsmod", "/usr/bin/kmod",
    "/usr/bin/udevadm", "/lib/systemd/systemd-udevd", "/lib/udev/scsi_id", "/usr/bin/systemctl",
    "/usr/bin/dd", "/usr/bin/od", "/usr/bin/sha256sum", "/usr/bin/stat", "/usr/bin/timeout",
    "/usr/bin/truncate", "/usr/bin/cmp", "/usr/bin/fallocate", "/usr/bin/date", "/usr/bin/sort",
    "/usr/bin/head", "/usr/bin/tail", "/usr/bin/tr", "/usr/bin/grep", "/usr/bin/sed", "/usr/bin/awk",
]
# udev rules that make the links a Debian host has (by-id, by-path, by-uuid) and watch for
# changes (a new filesystem gets its by-uuid link).
UDEV_RULES = ["/usr/lib/udev/rules.d/50-udev-default.rules", "/usr/lib/udev/rules.d/60-block.rules",
              "/usr/lib/udev/rules.d/60-persistent-storage.rules"]
# mdadm's own rules (incremental assembly, /dev/md names): kept aside, installed only at boots
# whose kernel command line says vmtest.mdadm-udev (micro/init), as on a host with mdadm.
MDADM_RULES = ["/usr/lib/udev/rules.d/01-md-raid-creating.rules", "/usr/lib/udev/rules.d/63-md-raid-arrays.rules",
               "/usr/lib/udev/rules.d/64-md-raid-assembly.rules"]
# Kernel modules (with their dependencies). md_mod and raid0 are in the tree but not loaded at
# boot: dbhost loads them itself, as on a real host.
BOOT_MODULES = ["virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "nvme", "9pnet_virtio", "9p",
                "crc32c_generic"]
MORE_MODULES = ["md_mod", "raid0", "raid1", "xfs", "ext4", "loop"]  # raid1: foreign arrays (mdadm)
MODULE_INDEX = ["modules.dep", "modules.dep.bin", "modules.alias", "modules.alias.bin", "modules.softdep",
                "modules.symbols", "modules.symbols.bin", "modules.builtin", "modules.builtin.bin",
                "modules.builtin.alias.bin", "modules.builtin.modinfo", "modules.devname", "modules.order"]
LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib", "/lib"]


def die(msg: str):
    print(f"micro/build: {msg}", file=sys.stderr)
    sys.exit(1)


class ImageFS:
    """Read-only access to an ext4 image through debugfs (no mount, no loop device). Copies
    files into `out`, recreating every symlink met on the way (merged /usr, /lib64 loader)."""

    def __init__(self, image: Path, out: Path):
        self.image = image
        self.out = out
        self._lstat: dict = {}
        self._real: dict = {}

    def _debugfs(self, request: str) -> str:
        p = subprocess.run(["debugfs", "-R", request, str(self.image)], capture_output=True, text=True)
        return p.stdout

    def lstat(self, path: str):
        """(kind, link target) of a path without following a final symlink; kind None if absent."""
        if path not in self._lstat:
            t = self._debugfs(f'stat "{path}"')
            m = re.search(r"Type: (\w+)", t)
            kind = m.group(1) if m else None
            target = None
            if kind == "symlink":
                fm = re.search(r'Fast link dest: "(.*)"', t)
                if fm:
                    target = fm.group(1)
                else:  # a slow symlink keeps its target in a data block
                    with tempfile.NamedTemporaryFile() as f:
                        self._debugfs(f'dump "{path}" {f.name}')
                        target = Path(f.name).read_text()
            self._lstat[path] = (kind, target)
        return self._lstat[path]

    def real(self, path: str, depth: int = 0) -> str:
        """Resolve every symlink in `path` (inside the image), recreating them under `out`."""
        if depth > 40:
            die(f"symlink loop at {path}")
        path = posixpath.normpath(path)
        if path in self._real:
            return self._real[path]
        cur = "/"
        for comp in [c for c in path.split("/") if c]:
            p = posixpath.join(cur, comp)
            kind, target = self.lstat(p)
            if kind is None:
                raise FileNotFoundError(p)
            if kind == "symlink":
                link = self.out / p.lstrip("/")
                link.parent.mkdir(parents=True, exist_ok=True)
                if not link.is_symlink():
                    os.symlink(target, link)
                dest = target if target.startswith("/") else posixpath.join(cur, target)
                cur = self.real(dest, depth + 1)
            else:
                cur = p
        self._real[path] = cur
        return cur

    def exists(self, path: str) -> bool:
        try:
            self.real(path)
            return True
        except FileNotFoundError:
            return False

    def copy(self, path: str) -> Path:
        """Copy a file (its real path, with the symlinks leading to it) into `out`."""
        rp = self.real(path)
        dst = self.out / rp.lstrip("/")
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            self._debugfs(f'dump -p "{rp}" "{dst}"')
            if not dst.exists():
                die(f"could not read {rp} from {self.image}")
        return dst


def elf_deps(f: Path):
    """(interpreter, needed, runpath) of an ELF file; (None, [], []) for scripts."""
    with open(f, "rb") as fh:
        if fh.read(4) != b"\x7fELF":
            return None, [], []
    d = subprocess.run(["readelf", "-d", str(f)], capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", d)
    runpath = []
    for m in re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[(.+?)\]", d):
        runpath += m.split(":")
    interp = re.search(r"Requesting program interpreter: (.+?)\]",
                       subprocess.run(["readelf", "-l", str(f)], capture_output=True, text=True).stdout)
    return (interp.group(1) if interp else None), needed, runpath


def copy_with_libs(fs: ImageFS, path: str, seen: set):
    if path in seen:
        return
    seen.add(path)
    dst = fs.copy(path)
    interp, needed, runpath = elf_deps(dst)
    if interp:
        copy_with_libs(fs, interp, seen)
    for lib in needed:
        for d in runpath + LIB_DIRS:
            if fs.exists(posixpath.join(d, lib)):
                copy_with_libs(fs, posixpath.join(d, lib), seen)
                break
        else:
            die(f"{path} needs {lib}, not found in the image")


def module_name(rel: str) -> str:
    base = posixpath.basename(rel)
    base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base)
    return base.replace("-", "_")


def copy_modules(fs: ImageFS, kver: str) -> list:
    mdir = f"/usr/lib/modules/{kver}"
    if not fs.exists(mdir + "/modules.dep"):
        die(f"{fs.image} has no {mdir}/modules.dep (kernel {kver})")
    for f in MODULE_INDEX:
        if fs.exists(f"{mdir}/{f}"):
            fs.copy(f"{mdir}/{f}")
    dep_text = (fs.out / fs.real(mdir + "/modules.dep").lstrip("/")).read_text()
    deps = {}
    path_of = {}
    for line in dep_text.splitlines():
        if ":" not in line:
            continue
        mod, rest = line.split(":", 1)
        name = module_name(mod)
        path_of[name] = mod
        deps[name] = [module_name(x) for x in rest.split()]
    builtin_p = fs.out / fs.real(mdir + "/modules.builtin").lstrip("/")
    builtin = {module_name(x) for x in builtin_p.read_text().split()} if builtin_p.exists() else set()
    copied = []

    def need(name: str):
        if name in copied or name in builtin:
            return
        if name not in path_of:
            die(f"kernel {kver} has no module {name} (neither loadable nor built in)")
        copied.append(name)
        for d in deps[name]:
            need(d)
        fs.copy(f"{mdir}/{path_of[name]}")

    for m in BOOT_MODULES + MORE_MODULES:
        need(m)
    return copied


def kernel_release(vmlinuz: Path) -> str:
    t = subprocess.run(["file", "-b", str(vmlinuz)], capture_output=True, text=True).stdout
    m = re.search(r"version (\S+)", t)
    if not m:
        die(f"cannot read the kernel release of {vmlinuz} (file says: {t.strip()})")
    return m.group(1)


def identity(p: Path) -> str:
    st = p.stat()
    return f"{p.resolve()} {st.st_size} {int(st.st_mtime)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", type=Path, required=True)
    ap.add_argument("--kernel", type=Path)
    ap.add_argument("--root", type=Path)
    ap.add_argument("--name", default="default")
    a = ap.parse_args()
    vmlinuz = a.kernel or a.image / "vmlinuz"
    root = a.root or a.image / "root-mdadm.img"
    for p in (vmlinuz, root):
        if not p.is_file():
            die(f"{p} missing (run scripts/vm-image.sh)")
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    if "statically linked" not in subprocess.run(["file", "-L", str(busybox)], capture_output=True,
                                                 text=True).stdout:
        die(f"{busybox} is not a static busybox (apt-get install busybox-static)")
    for tool in ("debugfs", "readelf", "cpio"):
        if not shutil.which(tool):
            die(f"{tool} is not installed")
    kver = kernel_release(vmlinuz)
    cache = Path(os.environ.get("DBHOST_VM_CACHE", "/var/cache/dbhost-vm"))
    h = hashlib.sha256()
    for f in (Path(__file__), HERE / "init"):
        h.update(f.read_bytes())
    h.update(f"{identity(vmlinuz)}\n{identity(root)}\n{identity(busybox)}\n{a.name}\n".encode())
    key = h.hexdigest()[:16]
    out = cache / f"micro-{key}"
    if (out / "done").exists():
        print(f"micro/build: cached {out} (kernel {kver})", file=sys.stderr)
        print(out)
        return 0
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"micro-{key}-", dir=cache))
    try:
        tree = work / "tree"
        tree.mkdir()
        fs = ImageFS(root, tree)
        seen: set = set()
        for top in ("/bin", "/sbin", "/lib", "/lib64"):  # merged /usr: the kernel runs /sbin/modprobe
            if fs.exists(top):
                fs.real(top)
        for t in TOOLS:
            copy_with_libs(fs, t, seen)
        for r in UDEV_RULES:
            fs.copy(r)
        aside = tree / "usr/share/micro/mdadm-rules"
        aside.mkdir(parents=True)
        for r in MDADM_RULES:
            shutil.move(str(fs.copy(r)), aside / posixpath.basename(r))
        mods = copy_modules(fs, kver)
        (tree / "busybox").mkdir()
        shutil.copy2(busybox, tree / "busybox" / "busybox")
        shutil.copy2(HERE / "init", tree / "init")
        os.chmod(tree / "init", 0o755)
        for d in ("dev", "proc", "sys", "run", "tmp", "etc/udev/rules.d", "etc/systemd/system", "usr/local/sbin",
                  "var/lib", "mnt"):
            (tree / d).mkdir(parents=True, exist_ok=True)
        (tree / "etc/passwd").write_text("root:x:0:0:root:/root:/usr/bin/bash\n")
        (tree / "etc/group").write_text("root:x:0:\ndisk:x:6:\n")
        (tree / "etc/fstab").write_text("# micro guest: nothing is mounted from fstab at boot\n")
        (tree / "etc/mdadm").mkdir()
        (tree / "etc/mdadm/mdadm.conf").write_text("# micro guest: no ARRAY lines; HOMEHOST <none>\n")
        sh = tree / "usr/bin/sh"
        if not sh.exists() and not sh.is_symlink():
            os.symlink("/busybox/busybox", sh)
        (tree / "kver").write_text(kver + "\n")
        (tree / "etc/micro-boot-modules").write_text(" ".join(BOOT_MODULES) + "\n")
        files = subprocess.run(["find", ".", "-mindepth", "1"], cwd=tree, capture_output=True, text=True,
                               check=True).stdout
        with open(work / "initrd.img", "wb") as f:
            subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=tree, input=files.encode(),
                           stdout=f, check=True)
        shutil.copy2(vmlinuz, work / "vmlinuz")
        (work / "kver").write_text(kver + "\n")
        (work / "name").write_text(a.name + "\n")
        size = (work / "initrd.img").stat().st_size
        (work / "manifest.txt").write_text(
            f"kernel {kver} from {vmlinuz}\nroot {root}\ninitrd {size} bytes (uncompressed cpio)\n"
            f"modules: {' '.join(sorted(mods))}\nfiles:\n{files}")
        shutil.rmtree(tree)
        (work / "done").write_text("ok\n")
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
        for old in cache.glob("micro-*"):  # older builds for this kernel name
            if old != out and (old / "name").is_file() and (old / "name").read_text().strip() == a.name:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        if work.exists():
            shutil.rmtree(work)
    print(f"micro/build: built {out} (kernel {kver}, {size // 1024} KiB initrd)", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
