#!/usr/bin/env python3
"""vm-tests harness: boots Debian guests in QEMU with cloud-like data disks and runs dbhost.

Python 3 standard library only. Entry point: scripts/vm-test.sh (builds the static binary and the
guest image, then runs `harness.py --image DIR [--image DIR...] --dbhost BIN [SCENARIO...]`;
one --image per Debian suite the scenarios use, see `--suites`).

A scenario (vm-tests/scenarios/<name>.py, a module-level SCENARIO = Scenario(...)) declares
  * disks: Disk(name, size, bus=scsi|nvme|virtio, lun, serial, cache, bps, iops, block_size, ...)
  * cloud-init user-data (a dict, sent as JSON, which is valid YAML) and meta-data
  * steps, run in order:
      Boot(job=..., on_mark={...}, expect_rc=0, check=fn)  one QEMU process, one guest boot
      Host(fn)                                             host-side action or assertion
    Boot.on_mark maps a guest marker ("VMTEST-MARK <name>" on ttyS1) to host actions:
      HotAdd(Disk), HotRemove(name), PowerOff() (hard: QMP quit), Delay(seconds) (emulation,
      e.g. "the disk arrives 20 s late", never used to synchronise).
Guests run on a qcow2 overlay over the cached base image (never modified), with -nic none (a
scenario may opt into one guestfwd port on restricted user networking: Scenario.guestfwd).
Job and results travel over virtio-9p shares (vmjob read-only, vmout), so the harness adds no
block devices that dbhost's detection would see. The guest side is vm-tests/guest/ (in the
image) and vm-tests/lib/guest-lib.sh (in every job).

Output: PASS/FAIL per scenario with timings, then exactly "N passed, N failed"; exit 1 on any
failure. Everything of a run is kept under vm-tests/runs/<scenario>/ (console logs, ttyS1 logs,
qemu command lines, out-N/ result dirs, result.json).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SCENARIO_DIR = HERE / "scenarios"
BENCH_DIR = HERE / "bench"  # benchmarks: scenarios that print figures (suite=False, run by name)
RUNS = Path(os.environ.get("DBHOST_VM_RUNS", HERE / "runs"))
MIB = 1024 * 1024
GIB = 1024 * MIB


class ScenarioFailure(Exception):
    """An assertion about the guest or the host failed (the scenario FAILs, the suite goes on)."""


def size_bytes(s) -> int:
    if isinstance(s, int):
        return s
    units = {"K": 1024, "M": MIB, "G": GIB, "T": 1024 * GIB}
    s = str(s).strip().upper().rstrip("B").rstrip("I")
    if s and s[-1] in units:
        return int(float(s[:-1]) * units[s[-1]])
    return int(s)


# --------------------------------------------------------------------------------------------
# Scenario description


@dataclass
class Disk:
    """A data disk as the cloud would attach it."""

    name: str
    size: object = "2G"
    bus: str = "scsi"  # scsi (virtio-scsi, explicit LUN) | nvme | virtio (virtio-blk)
    lun: Optional[int] = None  # scsi: the LUN (Azure-style data disk LUN); default: order
    serial: Optional[str] = None  # default: the name
    cache: str = "none"  # QEMU host cache mode; "none" = O_DIRECT, like a no-cache cloud disk
    bps: Optional[int] = None  # throttling.bps-total (bytes/s), emulates a cloud disk cap
    iops: Optional[int] = None  # throttling.iops-total
    block_size: int = 512  # logical block size (512 or 4096)
    physical_block_size: Optional[int] = None  # default: max(block_size, 4096)
    rotational: bool = False  # scsi only: rotation_rate=1 makes queue/rotational 0
    vendor: Optional[str] = None  # scsi only (e.g. Google / PersistentDisk)
    product: Optional[str] = None
    # use this file (copied) instead of a blank one; a callable is called when the disk is
    # created (an image made on the host at run time, e.g. by scripts/signature_corpus.py)
    image: Optional[Union[str, Callable[[], str]]] = None
    # Fault injection: "EIO", "EPERM" or "ENOSPC". The disk is served through nbdkit's error
    # filter, and the guest decides when its requests fail (guest-lib.sh: fault_on SERIAL
    # write|read, fault_off): every write (and write-zeroes, trim) fails with this error while
    # the trigger file <out>/faults/SERIAL.write exists, every read with EIO while .read exists.
    # The device reports errors to the guest (werror/rerror=report) instead of pausing the VM.
    fault: Optional[str] = None
    readonly: bool = False  # attached read-only (the guest sees /sys/block/X/ro = 1)

    def serial_(self) -> str:
        return self.serial or self.name


@dataclass
class HotAdd:
    disk: Disk


@dataclass
class HotRemove:
    name: object  # the disk's name, or the Disk itself (its name may change: micro claims share boots)


@dataclass
class PowerOff:
    """Hard power-off (QMP quit): no shutdown, like pulling the plug."""


@dataclass
class Delay:
    """Wait before the next action. Emulates the outside world (a disk attached late); never a
    way to wait for the guest (that is what markers are for)."""

    seconds: float


@dataclass
class Boot:
    """One guest boot (one QEMU process) on the scenario's disks, which persist across boots.

    job: bash run in the guest by vmtest.service after multi-user.target and cloud-init's final
         stage, with guest-lib.sh sourced (check/mark/wait_until/next_boot/save).
    """

    job: str = ""
    on_mark: dict = field(default_factory=dict)  # marker name -> [actions]
    expect_rc: int = 0
    expect_job: bool = True  # False: the guest is powered off (hard) before the job ends
    # False: the job removes cloud-init's state itself (`dbhost generalize`), so cloud-init's
    # result after the job cannot say "done"; the job checks cloud-init's result before that.
    expect_cloud_init: bool = True
    # Whether cloud-init runs at this boot. None (default): only when the scenario has a seed
    # (user_data). False: its four units are masked, which saves ~60-90 s per boot under TCG (a
    # NoCloud-only datasource_list makes cloud-init run even without a seed, as DataSourceNone).
    # Use False for boots whose job runs dbhost itself (reboot checks, a new VM that adopts),
    # never where the scenario is about what cloud-init does. A `hostname` given on such a boot
    # goes on the kernel command line (systemd.hostname=) instead of the meta-data.
    cloud_init: Optional[bool] = None
    check: Optional[Callable] = None  # fn(run, out_dir) on the host after this boot
    instance_id: Optional[str] = None  # change the NoCloud instance-id from this boot on
    hostname: Optional[str] = None  # change the hostname (meta-data local-hostname)
    user_data: Optional[dict] = None  # replace the user-data from this boot on
    mask: list = field(default_factory=list)  # extra units masked at this boot
    timeout: int = 900  # bound for this boot (TCG on a loaded 2-core host is slow)


# Masked on every boot: units no scenario looks at, which only compete for the two emulated CPUs
# while the guest boots (sshd keeps its host keys on disk; nothing logs in).
BOOT_MASK = ["ssh.service", "e2scrub_reap.service", "getty@tty1.service", "serial-getty@ttyS0.service",
             "systemd-logind.service", "systemd-user-sessions.service", "systemd-update-utmp.service",
             "systemd-update-utmp-runlevel.service", "systemd-binfmt.service",
             "dpkg-db-backup.timer", "apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer"]
CLOUD_INIT_UNITS = ["cloud-init-local.service", "cloud-init.service", "cloud-config.service",
                    "cloud-final.service"]


@dataclass
class Host:
    """A host-side step: fn(run). Raise ScenarioFailure (or AssertionError) to fail."""

    fn: Callable


@dataclass
class Scenario:
    name: str
    description: str
    steps: list
    disks: list = field(default_factory=list)
    user_data: Optional[dict] = None  # cloud-init cloud-config; None = no seed attached
    instance_id: str = "i-vmtest-1"
    hostname: str = "dbhost-vm"
    variant: str = "base"  # base (no mdadm) | mdadm
    # Which guest: the Debian suite of the image (bookworm: kernel 6.1, MariaDB 10.11,
    # PostgreSQL 15; trixie: kernel 6.12, MariaDB 11.8, PostgreSQL 17) and the kernel flavour
    # booted on it (generic | cloud: Debian's linux-image-cloud-amd64; same root file system).
    image: str = "bookworm"
    kernel: str = "generic"
    memory_mb: int = 2048  # the database runs with dbhost's tuning: half the RAM for its cache
    mask: list = field(default_factory=list)  # units masked (systemd.mask=) on every boot
    profiles: dict = field(default_factory=dict)  # extra profile files: name -> TOML text
    suite: bool = True  # False: only run when named (e.g. `try`, the README's demo)
    # Opt-in network: a function returning one QEMU guestfwd rule (called at each boot), e.g.
    # "tcp:GUEST_IP:PORT-cmd:socat STDIO TCP:127.0.0.1:HOST_PORT" (a program per connection). The
    # guest then gets a NIC on QEMU user networking with restrict=on: it reaches that one host
    # loopback port and nothing else. None (default): -nic none.
    guestfwd: Optional[Callable[[], str]] = None


# --------------------------------------------------------------------------------------------
# Helpers usable by scenarios


GUEST_DEFAULTS = {"image": "bookworm", "kernel": "generic"}


def on_guest(sc: Scenario, name: Optional[str] = None, **fields) -> Scenario:
    """The same scenario on another guest (image=..., kernel=...; also variant=, and suite= for
    whether the copy runs in the suite), named NAME or `<name>-<image>-<kernel>` (only the values
    that differ from GUEST_DEFAULTS). A scenario module lists such copies in VARIANTS = [...]
    beside SCENARIO."""
    bad = set(fields) - {"image", "kernel", "variant", "suite"}
    if bad:
        raise ValueError(f"on_guest: not a guest field: {sorted(bad)}")
    tags = [fields[k] for k in GUEST_DEFAULTS if fields.get(k, GUEST_DEFAULTS[k]) != GUEST_DEFAULTS[k]]
    return dataclasses.replace(sc, name=name or "-".join([sc.name, *tags]), **fields)


def dbhost_runcmd(args: str, name: str) -> str:
    """A cloud-init runcmd entry that runs dbhost and keeps stdout, stderr and the exit code in
    the results (out dir): NAME.out, NAME.err, NAME.rc."""
    o = "/run/vmtest/out/" + name
    return f"/usr/local/sbin/dbhost {args} >{o}.out 2>{o}.err; echo $? >{o}.rc"


def cloud_init_done(out: Path, n: int):
    """What `cloud-init status` calls done, read from the files it reads (the runner copies them:
    the python tool costs ~8 s under TCG): result.json exists (written when the final stage
    ends) with no errors, and status.json has no stage running and no stage errors."""
    res = out / "cloud-init-result.json"
    expect(res.exists(), f"boot {n}: cloud-init did not finish (no /run/cloud-init/result.json)")
    errors = (read_json(res).get("v1") or {}).get("errors")
    st = read_json(out / "cloud-init-status.json").get("v1") or {}
    stage_errors = {k: v["errors"] for k, v in st.items() if isinstance(v, dict) and v.get("errors")}
    expect(errors == [] and st.get("stage") is None and not stage_errors,
           f"boot {n}: cloud-init did not finish cleanly: errors {errors}, running stage {st.get('stage')!r}, "
           f"stage errors {stage_errors}")


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioFailure(f"{path.name} missing in the results ({path.parent})")
    except json.JSONDecodeError as e:
        text = path.read_text()[:600]
        raise ScenarioFailure(f"{path.name} is not JSON ({e}): {text!r}")


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ScenarioFailure(f"{path.name} missing in the results ({path.parent})")


def expect(cond, msg: str):
    if not cond:
        raise ScenarioFailure(msg)


def md_examine(image: Path) -> str:
    """Host oracle: `mdadm --examine` on a disk image file (mdadm only ever runs on the host)."""
    if shutil.which("mdadm") is None:
        raise ScenarioFailure("mdadm is not installed on the host (needed as an oracle)")
    p = subprocess.run(["mdadm", "--examine", str(image)], capture_output=True, text=True)
    return p.stdout + p.stderr


# --------------------------------------------------------------------------------------------
# QMP


class Qmp:
    def __init__(self, path: Path, timeout: float = 120):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise ScenarioFailure(f"QMP socket {path} did not come up")
                time.sleep(0.2)
        self.sock.settimeout(60)
        self.buf = b""
        self.events = []
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self) -> dict:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ScenarioFailure("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name: str, **args) -> dict:
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise ScenarioFailure(f"QMP {name} {args}: {r['error']}")
            return r.get("return")

    def wait_event(self, name: str, timeout: float, **data) -> dict:
        """The next event NAME whose data has these values (e.g. device="dev-x")."""
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name and all((e.get("data") or {}).get(k) == v for k, v in data.items()):
                    return self.events.pop(i)
            if time.monotonic() > deadline:
                raise ScenarioFailure(f"QMP event {name} not seen within {timeout} s")
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                self.events.append(self._read())
            except socket.timeout:
                pass

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------------------------
# Running a scenario


def log(msg: str):
    print(msg, flush=True)


class Run:
    """State of one scenario run: its directory, disks and boots."""

    guest_kind = "full"  # for the guest lock (micro/tier.py's runs say "micro")

    def __init__(self, sc: Scenario, image: Path, dbhost: Path, accel: str):
        self.sc = sc
        self.image = image
        self.dbhost = dbhost
        self.accel = accel
        self.dir = RUNS / sc.name
        self.boot_no = 0
        self.disks: list[Disk] = []
        self.user_data = sc.user_data
        self.instance_id = sc.instance_id
        self.hostname = sc.hostname
        self.timings: dict = {}
        self.root = self.dir / "root.qcow2"
        self.kernel: dict = {}  # kernels.json entry of sc.kernel (prepare)
        self.nbd_dir: Optional[Path] = None  # sockets of the fault disks' nbdkit servers
        self.nbds: list = []  # their processes during a boot

    # paths
    def disk_path(self, d: Disk) -> Path:
        return self.dir / f"disk-{d.name}.img"

    def out(self, boot: Optional[int] = None) -> Path:
        return self.dir / f"out-{boot or self.boot_no}"

    def prepare(self):
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.kernel = kernel_info(self.image, self.sc.kernel)
        base = self.image / ("root.img" if self.sc.variant == "base" else f"root-{self.sc.variant}.img")
        if not base.is_file():
            raise ScenarioFailure(f"guest image {base} missing (run scripts/vm-image.sh)")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base.resolve()),
                        str(self.root)], check=True)
        for d in self.sc.disks:
            self.create_disk(d)
            self.disks.append(d)
        self.job_share()

    def job_share(self) -> Path:
        """The job share's fixed content: the dbhost under test, profiles, guest-lib.sh."""
        job = self.dir / "job"
        (job / "profiles").mkdir(parents=True)
        shutil.copy2(self.dbhost, job / "dbhost")
        prof = REPO / "profiles"
        if prof.is_dir():
            for p in prof.glob("*.toml"):
                shutil.copy2(p, job / "profiles" / p.name)
        for name, text in self.sc.profiles.items():
            (job / "profiles" / name).write_text(text)
        shutil.copy2(HERE / "lib" / "guest-lib.sh", job / "lib.sh")
        return job

    def create_disk(self, d: Disk):
        p = self.disk_path(d)
        if d.image:
            src = d.image() if callable(d.image) else d.image
            subprocess.run(["cp", "--sparse=always", str(src), str(p)], check=True)
        else:
            with open(p, "wb") as f:
                f.truncate(size_bytes(d.size))

    def capture(self, tag: str) -> dict:
        """Copy the OS disk (flattened) and every data disk image: an image capture."""
        dst = self.dir / f"capture-{tag}"
        dst.mkdir()
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(self.root), str(dst / "root.qcow2")], check=True)
        files = {"root": dst / "root.qcow2"}
        for d in self.disks:
            t = dst / self.disk_path(d).name
            subprocess.run(["cp", "--sparse=always", str(self.disk_path(d)), str(t)], check=True)
            files[d.name] = t
        return files

    def redeploy(self, captured: dict, instance_id: str, hostname: str):
        """Make the next boot a 'new VM' from captured disks: new overlay root, copied data disks."""
        self.root = self.dir / f"root-redeploy-{instance_id}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                        str(Path(captured["root"]).resolve()), str(self.root)], check=True)
        for d in self.disks:
            if d.name in captured:
                subprocess.run(["cp", "--sparse=always", str(captured[d.name]), str(self.disk_path(d))], check=True)
        self.instance_id, self.hostname = instance_id, hostname

    def fresh_os(self, instance_id: str, hostname: str):
        """Make the next boot a new VM from the original OS image (a blank overlay over the
        scenario's base image, not a capture) with the same data disks: a database host rebuilt
        around the data disks of an earlier one (adopt)."""
        base = self.image / ("root.img" if self.sc.variant == "base" else f"root-{self.sc.variant}.img")
        self.root = self.dir / f"root-fresh-{instance_id}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base.resolve()),
                        str(self.root)], check=True)
        self.instance_id, self.hostname = instance_id, hostname

    # ------------------------------------------------------------------ qemu command line
    # ------------------------------------------------------------------ fault disks (nbdkit)
    def nbd_socket(self, d: Disk) -> Path:
        if self.nbd_dir is None:  # short: unix socket paths are limited to 107 bytes
            self.nbd_dir = Path(tempfile.mkdtemp(prefix="dbhost-nbd-"))
        return self.nbd_dir / f"{d.name}.sock"

    def start_nbd(self, d: Disk, faults: Path):
        """Serve d's image through nbdkit's error filter (see Disk.fault) until the boot ends."""
        if shutil.which("nbdkit") is None:
            raise ScenarioFailure("nbdkit is not installed (needed for fault-injection disks)")
        sock = self.nbd_socket(d)
        pid = sock.with_suffix(".pid")
        for f in (sock, pid):
            f.unlink(missing_ok=True)
        trig = faults / d.serial_()
        args = ["nbdkit", "--foreground", "--exit-with-parent", "--unix", str(sock), "-P", str(pid),
                "--filter=error", "file", f"file={self.disk_path(d)}"]
        for op in ("pwrite", "zero", "trim"):
            args += [f"error-{op}={d.fault}", f"error-{op}-rate=1", f"error-{op}-file={trig}.write"]
        args += ["error-pread=EIO", "error-pread-rate=1", f"error-pread-file={trig}.read"]
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                             stdout=open(self.dir / f"nbdkit-{d.name}-{self.boot_no}.log", "w"))
        self.nbds.append(p)
        deadline = time.monotonic() + 30
        while not pid.exists():  # nbdkit writes its pid file once it listens
            if p.poll() is not None or time.monotonic() > deadline:
                raise ScenarioFailure(f"nbdkit for disk {d.name} did not start (see "
                                      f"{self.dir}/nbdkit-{d.name}-{self.boot_no}.log)")
            time.sleep(0.05)

    def stop_nbds(self):
        for p in self.nbds:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.nbds = []

    def drive_args(self, d: Disk, index: int) -> list:
        path = self.disk_path(d)
        if d.fault:
            drv = f"driver=nbd,server.type=unix,server.path={self.nbd_socket(d)},if=none,id=drv-{d.name}"
        else:
            drv = f"file={path},format=raw,if=none,id=drv-{d.name},cache={d.cache}"
            if d.cache == "none":
                drv += ",aio=native"
        if d.readonly:
            drv += ",readonly=on"
        if d.bps:
            drv += f",throttling.bps-total={d.bps}"
        if d.iops:
            drv += f",throttling.iops-total={d.iops}"
        pbs = d.physical_block_size or max(d.block_size, 4096)
        blk = f"logical_block_size={d.block_size},physical_block_size={pbs}"
        if d.bus == "scsi":
            lun = d.lun if d.lun is not None else index
            dev = (f"scsi-hd,id=dev-{d.name},drive=drv-{d.name},bus=scsi0.0,channel=0,scsi-id=0,lun={lun},"
                   f"serial={d.serial_()},{blk}")
            if not d.rotational:
                dev += ",rotation_rate=1"
            if d.vendor:
                dev += f",vendor={d.vendor}"
            if d.product:
                dev += f",product={d.product}"
        elif d.bus == "nvme":
            dev = f"nvme,id=dev-{d.name},drive=drv-{d.name},serial={d.serial_()},{blk}"
        elif d.bus == "virtio":
            dev = f"virtio-blk-pci,id=dev-{d.name},drive=drv-{d.name},serial={d.serial_()[:20]},{blk}"
        else:
            raise ScenarioFailure(f"disk {d.name}: unknown bus {d.bus!r}")
        if d.fault:
            dev += ",werror=report,rerror=report"
        return ["-drive", drv, "-device", dev]

    def seed(self) -> Optional[Path]:
        if self.user_data is None:
            return None
        d = self.dir / f"seed-{self.boot_no}"
        d.mkdir()
        ud = dict(self.user_data)
        # Test-bed defaults (a scenario may override): keep the image's SSH host keys instead of
        # generating 3072-bit RSA keys under TCG on every instance.
        ud.setdefault("ssh_deletekeys", False)
        ud.setdefault("ssh_genkeytypes", [])
        # The minbase image has no `locales` package, so cloud-init's locale module would fail.
        ud.setdefault("locale", "false")
        (d / "user-data").write_text("#cloud-config\n" + json.dumps(ud, indent=1) + "\n")
        (d / "meta-data").write_text(json.dumps({"instance-id": self.instance_id,
                                                 "local-hostname": self.hostname}) + "\n")
        iso = self.dir / f"seed-{self.boot_no}.iso"
        tool = shutil.which("genisoimage") or shutil.which("xorrisofs")
        if tool:
            cmd = [tool, "-quiet", "-output", str(iso), "-volid", "cidata", "-joliet", "-rock", str(d / "user-data"),
                   str(d / "meta-data")]
        elif shutil.which("xorriso"):
            cmd = ["xorriso", "-as", "mkisofs", "-quiet", "-o", str(iso), "-V", "cidata", "-J", "-R",
                   str(d / "user-data"), str(d / "meta-data")]
        else:
            raise ScenarioFailure("neither genisoimage nor xorriso is installed")
        subprocess.run(cmd, check=True, capture_output=True)
        return iso

    def cloud_init_runs(self, boot: Boot) -> bool:
        return self.user_data is not None if boot.cloud_init is None else boot.cloud_init

    def nic(self) -> list:
        if self.sc.guestfwd is None:
            return ["-nic", "none"]
        return ["-nic", f"user,model=virtio-net-pci,restrict=on,guestfwd={self.sc.guestfwd()}"]

    def qemu_cmd(self, boot: Boot, out: Path, mask: list) -> list:
        img = self.image
        append = ["root=/dev/vda", "console=ttyS0,115200", "modprobe.blacklist=floppy", "panic=-1",
                  "systemd.show_status=1",
                  # The guest is a throw-away test VM under TCG: retpolines and RSB filling on
                  # every context switch only cost emulated instructions.
                  "mitigations=off",
                  # systemd >= 256 (trixie): no sshd-over-AF_VSOCK generator (it loads the vsock
                  # and VMCI modules at every boot); older systemd ignores the option.
                  "systemd.ssh_auto=0"]
        units = list(BOOT_MASK) + list(mask)
        if self.kernel["channel"] != "9p":
            append.append(f"vmtest.channel={self.kernel['channel']}")
        if not self.cloud_init_runs(boot):
            units += CLOUD_INIT_UNITS
            # also makes its systemd generator skip ds-identify (seconds of shell under TCG)
            append.append("cloud-init=disabled")
            if boot.hostname:
                append.append(f"systemd.hostname={boot.hostname}")
        for u in dict.fromkeys(units):
            append.append(f"systemd.mask={u}")
        cpu = ["-cpu", os.environ["DBHOST_VM_CPU"]] if os.environ.get("DBHOST_VM_CPU") else []
        cmd = ["qemu-system-x86_64", "-M", "pc", "-accel", self.accel, *cpu, "-smp", "2", "-m", str(self.sc.memory_mb),
               "-display", "none", "-vga", "none", "-monitor", "none", "-no-reboot", *self.nic(),
               "-serial", f"file:{self.dir}/console-{self.boot_no}.log",
               "-serial", f"file:{self.dir}/ttyS1-{self.boot_no}.log",
               "-qmp", f"unix:{self.dir}/qmp.sock,server=on,wait=off",
               "-kernel", str(img / self.kernel["vmlinuz"]), "-initrd", str(img / self.kernel["initrd"]),
               "-append", " ".join(append),
               # The OS disk must be the first virtio-blk device (it becomes /dev/vda).
               "-drive", f"file={self.root},format=qcow2,if=none,id=root,cache=unsafe,discard=unmap",
               "-device", "virtio-blk-pci,drive=root,serial=os-disk",
               # Entropy from the host: the guest's RNG is ready at once instead of after
               # ~30-40 s of TCG jitter (systemd 257 waits for it before sysinit.target).
               "-device", "virtio-rng-pci",
               *self.share_args(out),
               "-device", "virtio-scsi-pci,id=scsi0"]
        for i, d in enumerate(self.disks):
            cmd += self.drive_args(d, i)
        iso = self.seed()
        if iso:
            cmd += ["-drive", f"file={iso},format=raw,media=cdrom,if=ide,readonly=on"]
        return cmd

    def shares(self, out: Path) -> list:
        """(tag, host directory) of the job and result shares."""
        return [("vmjob", self.dir / "job"), ("vmout", out)]

    def share_args(self, out: Path) -> list:
        if self.kernel["channel"] == "9p":
            args = []
            for tag, path in self.shares(out):
                ro = ",readonly=on" if tag == "vmjob" else ""
                args += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none{ro},id={tag}"]
            return args
        # virtiofs (a kernel without 9p): one virtiofsd per share (started by _run_guest); the
        # guest's memory must be shared with them.
        args = ["-object", f"memory-backend-memfd,id=mem,size={self.sc.memory_mb}M,share=on",
                "-numa", "node,memdev=mem"]
        for tag, _path in self.shares(out):
            args += ["-chardev", f"socket,id=vfs-{tag},path={self.dir / f'vfs-{tag}.sock'}",
                     "-device", f"vhost-user-fs-pci,chardev=vfs-{tag},tag={tag}"]
        return args

    @contextlib.contextmanager
    def virtiofsd(self, out: Path):
        """Run one virtiofsd per share while the guest runs (only for the virtiofs channel); they
        are stopped by their process objects whatever happens."""
        procs = []
        try:
            if self.kernel["channel"] == "virtiofs":
                exe = find_virtiofsd()
                for tag, path in self.shares(out):
                    sock = self.dir / f"vfs-{tag}.sock"
                    if sock.exists():
                        sock.unlink()
                    logf = open(self.dir / f"virtiofsd-{tag}-{self.boot_no}.log", "w")
                    procs.append(subprocess.Popen([exe, f"--socket-path={sock}", "-o", f"source={path}",
                                                   "-o", "cache=none"], stdin=subprocess.DEVNULL, stdout=logf,
                                                  stderr=subprocess.STDOUT))
                    logf.close()
                    deadline = time.monotonic() + 30
                    while not sock.exists():
                        if procs[-1].poll() is not None or time.monotonic() > deadline:
                            raise ScenarioFailure(f"virtiofsd for {tag} did not start (see {logf.name})")
                        time.sleep(0.1)
            yield
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    # ------------------------------------------------------------------ one boot
    def boot(self, b: Boot):
        self.boot_no += 1
        n = self.boot_no
        if b.instance_id:
            self.instance_id = b.instance_id
        if b.hostname:
            self.hostname = b.hostname
        if b.user_data is not None:
            self.user_data = b.user_data
        job = self.dir / "job"
        (job / "boot").write_text(f"{n}\n")
        (job / f"boot-{n}.sh").write_text(b.job)
        (job / "run.sh").write_text(
            # The job runs from / rather than the 9p share: every program started with its cwd
            # on 9p (python scans its cwd at start-up) costs 9p requests, whose msize buffers
            # the kernel may fail to allocate under memory pressure (ENOMEM seen with a 1 GiB
            # database and a half-RAM buffer pool).
            "set -u\njob=$PWD\n. ./lib.sh\necho \"job: boot $VMTEST_BOOT\"\ncd /\n. \"$job/boot-$VMTEST_BOOT.sh\"\n")
        out = self.out(n)
        out.mkdir()
        cmd = self.qemu_cmd(b, out, self.sc.mask + b.mask)
        (self.dir / f"cmd-{n}.txt").write_text(shlex.join(cmd) + "\n")
        qmp_path = self.dir / "qmp.sock"
        if qmp_path.exists():
            qmp_path.unlink()
        tty1 = self.dir / f"ttyS1-{n}.log"
        with one_guest(self.guest_kind), self.virtiofsd(out):
            self._run_guest(b, n, cmd, qmp_path, tty1, out)

    def _run_guest(self, b: Boot, n: int, cmd: list, qmp_path: Path, tty1: Path, out: Path):
        t0 = time.monotonic()
        (out / "faults").mkdir(exist_ok=True)
        try:
            for d in self.disks:
                if d.fault:
                    self.start_nbd(d, out / "faults")
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(self.dir / f"qemu-{n}.log", "w"),
                                    stderr=subprocess.STDOUT)
        except BaseException:
            self.stop_nbds()
            raise
        qmp = None
        try:
            qmp = Qmp(qmp_path)
            seen_marks = set()
            pending = []  # (action, ...) queue from markers
            started = ended = None
            not_before = 0.0
            deadline = t0 + b.timeout
            while proc.poll() is None:
                now = time.monotonic()
                if STOP.is_set():
                    raise ScenarioFailure(f"boot {n}: the harness was interrupted")
                if now > deadline:
                    raise ScenarioFailure(f"boot {n}: no power-off within {b.timeout} s "
                                          f"(see {self.dir}/console-{n}.log)")
                text = tty1.read_text(errors="replace") if tty1.exists() else ""
                for line in text.splitlines():
                    if line.startswith("VMTEST-START") and started is None:
                        started = now - t0
                    if line.startswith("VMTEST-END") and ended is None:
                        ended = now - t0
                    if line.startswith("VMTEST-MARK "):
                        m = line.split(None, 1)[1].strip()
                        if m not in seen_marks:
                            seen_marks.add(m)
                            log(f"    boot {n}: mark {m!r} at {now - t0:.1f} s")
                            acts = b.on_mark.get(m, [])
                            pending += acts if isinstance(acts, list) else [acts]
                if pending and now >= not_before:
                    act = pending.pop(0)
                    if isinstance(act, Delay):
                        not_before = now + act.seconds
                    else:
                        self.act(qmp, act, now - t0)
                        if isinstance(act, PowerOff):
                            break
                    continue
                time.sleep(0.5)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            if qmp:
                qmp.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            self.stop_nbds()
        total = time.monotonic() - t0
        self.timings[f"boot-{n}"] = {"total_s": round(total, 1), "wall_start": round(time.time() - total, 1),
                                     "job_start_s": round(started, 1) if started else None,
                                     "job_end_s": round(ended, 1) if ended else None}
        log(f"    boot {n}: {total:.1f} s (job started at {started and round(started, 1)} s after qemu start)")
        if proc.returncode not in (0, None) and not any(isinstance(a, PowerOff) for acts in b.on_mark.values()
                                                       for a in (acts if isinstance(acts, list) else [acts])):
            raise ScenarioFailure(f"boot {n}: qemu exited with {proc.returncode}: "
                                  f"{(self.dir / f'qemu-{n}.log').read_text()[-800:]}")
        self.verify_boot(b, out)

    def act(self, qmp: Qmp, act, t: float):
        if isinstance(act, HotAdd):
            d = act.disk
            if not self.disk_path(d).exists():  # a disk detached earlier comes back as it was
                self.create_disk(d)
            lun = d.lun if d.lun is not None else len(self.disks)
            log(f"    hot-add {d.name} ({d.bus}) at {t:.1f} s")
            if d.fault:
                self.start_nbd(d, self.out() / "faults")
                file = {"driver": "nbd", "server": {"type": "unix", "path": str(self.nbd_socket(d))}}
            else:
                file = {"driver": "file", "filename": str(self.disk_path(d)), "cache": {"direct": d.cache == "none"}}
            qmp.cmd("blockdev-add", **{"driver": "raw", "node-name": f"drv-{d.name}", "file": file})
            pbs = d.physical_block_size or max(d.block_size, 4096)
            dev = {"id": f"dev-{d.name}", "drive": f"drv-{d.name}", "serial": d.serial_(),
                   "logical_block_size": d.block_size, "physical_block_size": pbs}
            if d.fault:
                dev.update({"werror": "report", "rerror": "report"})
            if d.bus == "scsi":
                dev.update({"driver": "scsi-hd", "bus": "scsi0.0", "channel": 0, "scsi-id": 0, "lun": lun})
                if not d.rotational:
                    dev["rotation_rate"] = 1
            elif d.bus == "nvme":
                dev["driver"] = "nvme"
            else:
                dev["driver"] = "virtio-blk-pci"
            qmp.cmd("device_add", **dev)
            if d.lun is None:
                d.lun = lun
            self.disks.append(d)
        elif isinstance(act, HotRemove):
            name = act.name.name if isinstance(act.name, Disk) else act.name
            log(f"    hot-remove {name} at {t:.1f} s")
            qmp.cmd("device_del", id=f"dev-{name}")
            qmp.wait_event("DEVICE_DELETED", 120, device=f"dev-{name}")
            try:  # a hot-added disk's node outlives its device: free the name for a re-attach
                qmp.cmd("blockdev-del", **{"node-name": f"drv-{name}"})
            except ScenarioFailure:
                pass  # a -drive disk's node went with its device
            self.disks = [d for d in self.disks if d.name != name]
        elif isinstance(act, PowerOff):
            log(f"    hard power-off at {t:.1f} s")
            qmp.cmd("quit")
        else:
            raise ScenarioFailure(f"unknown action {act!r}")

    def verify_boot(self, b: Boot, out: Path):
        n = self.boot_no
        if b.expect_job:
            rc_file = out / "rc"
            if not rc_file.exists():
                raise ScenarioFailure(f"boot {n}: the job did not finish (no rc; see {self.dir}/console-{n}.log "
                                      f"and ttyS1-{n}.log)")
            rc = int(rc_file.read_text().strip() or "-1")
            if rc != b.expect_rc:
                err = (out / "stderr").read_text(errors="replace")[-1500:] if (out / "stderr").exists() else ""
                raise ScenarioFailure(f"boot {n}: job exit code {rc}, expected {b.expect_rc}; stderr tail:\n{err}")
        failed = []
        checks = out / "checks.jsonl"
        if checks.exists():
            for line in checks.read_text().splitlines():
                c = json.loads(line)
                if not c["ok"]:
                    failed.append(f"{c['name']}: {c['detail']}")
        if failed:
            raise ScenarioFailure(f"boot {n}: guest checks failed:\n  " + "\n  ".join(failed))
        if b.expect_job and b.expect_cloud_init and self.cloud_init_runs(b):
            cloud_init_done(out, n)
        if b.check:
            b.check(self, out)

    def run(self):
        self.prepare()
        for step in self.sc.steps:
            if isinstance(step, Boot):
                self.boot(step)
            elif isinstance(step, Host):
                step.fn(self)
            else:
                raise ScenarioFailure(f"unknown step {step!r}")


# --------------------------------------------------------------------------------------------
# Guest images (scripts/vm-image.sh SUITE): one directory per Debian suite, each with its kernel
# flavours in kernels.json.


def image_suite(image: Path) -> str:
    """The Debian suite of an image directory (images made before suites were named: bookworm)."""
    f = image / "suite"
    return f.read_text().strip() if f.is_file() else "bookworm"


def kernel_info(image: Path, kernel: str) -> dict:
    """vmlinuz, initrd and job channel ("9p" or "virtiofs") of a kernel flavour of an image."""
    f = image / "kernels.json"
    kernels = json.loads(f.read_text()) if f.is_file() else {
        "generic": {"vmlinuz": "vmlinuz", "initrd": "initrd.img", "channel": "9p"}}
    if kernel not in kernels:
        raise ScenarioFailure(f"image {image} has no {kernel!r} kernel (it has: {', '.join(kernels)}); "
                              f"rebuild it with scripts/vm-image.sh")
    return kernels[kernel]


def find_virtiofsd() -> str:
    """QEMU 7.2's C virtiofsd (Debian 12: qemu-system-common) or the Rust one (Debian 13:
    package virtiofsd); $DBHOST_VIRTIOFSD names another. Both take the options used here."""
    for c in [os.environ.get("DBHOST_VIRTIOFSD"), "/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd",
              shutil.which("virtiofsd")]:
        if c and os.access(c, os.X_OK):
            return c
    raise ScenarioFailure("virtiofsd not found (a kernel without 9p needs it: Debian 12's qemu-system-common "
                          "ships /usr/lib/qemu/virtiofsd, Debian 13 has the virtiofsd package)")


# --------------------------------------------------------------------------------------------
# Acceleration: TCG unless a short KVM probe boot succeeds (KVM guests hang on some hosts).


def _flock(f, mode: int, what: str):
    try:
        fcntl.flock(f, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"    waiting for {what}")
        fcntl.flock(f, mode)


@contextlib.contextmanager
def one_guest(kind: str = "full"):
    """Hold the machine-wide guest lock while a QEMU guest runs: one guest at a time (two TCG
    guests on 2 cores only slow each other down and break every bounded wait). Another run of the
    harness (a second checkout, CI) waits here, boot by boot. $DBHOST_VM_LOCK names the file.

    Micro guests (kind "micro", micro/tier.py) are small enough that $DBHOST_VM_MICRO_SLOTS
    (default 1) of them may run at once: they hold the lock shared, each with one slot lock
    (PATH.micro-N); a full guest holds it exclusively. Both kinds pass a turnstile (PATH.turnstile)
    on the way in, which a waiting full guest keeps, so a stream of micro guests cannot starve it."""
    path = os.environ.get("DBHOST_VM_LOCK") or ("/run/lock/dbhost-vm-guest.lock" if os.access("/run/lock", os.W_OK)
                                                else "/tmp/dbhost-vm-guest.lock")
    micro = kind == "micro"
    with open(path + ".turnstile", "a") as gate, open(path, "a") as f:
        _flock(gate, fcntl.LOCK_EX, f"the guest lock's turnstile ({path}.turnstile)")
        try:
            _flock(f, fcntl.LOCK_SH if micro else fcntl.LOCK_EX, f"another guest to finish ({path})")
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        slot = None
        try:
            if micro:
                n = max(1, int(os.environ.get("DBHOST_VM_MICRO_SLOTS", "1")))
                slots = [open(f"{path}.micro-{i}", "a") for i in range(n)]
                for s in slots:
                    try:
                        fcntl.flock(s, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        slot = s
                        break
                    except BlockingIOError:
                        continue
                if slot is None:
                    slot = slots[threading.get_ident() % n]
                    _flock(slot, fcntl.LOCK_EX, f"a micro guest slot ({path}.micro-*)")
                for s in slots:
                    if s is not slot:
                        s.close()
            yield
        finally:
            if slot is not None:
                fcntl.flock(slot, fcntl.LOCK_UN)
                slot.close()
            fcntl.flock(f, fcntl.LOCK_UN)


def choose_accel(image: Path, cache: Path) -> str:
    want = os.environ.get("DBHOST_VM_ACCEL", "auto")
    if want in ("tcg", "kvm"):
        return "tcg,thread=multi" if want == "tcg" else "kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg,thread=multi"
    key = f"{os.uname().release}-{subprocess.run(['qemu-system-x86_64', '--version'], capture_output=True, text=True).stdout.split()[3]}"
    memo = cache / f"kvm-probe-{key}"
    if memo.exists():
        ok = memo.read_text().strip() == "ok"
    else:
        cmd = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none", "-vga",
               "none", "-no-reboot", "-nic", "none", "-serial", "stdio", "-kernel", str(image / "vmlinuz"),
               "-initrd", str(image / "initrd.img"), "-append", "console=ttyS0 vmtest.probe"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            ok = "VMTEST-PROBE-OK" in p.stdout
        except subprocess.TimeoutExpired:
            ok = False
        try:
            memo.write_text("ok\n" if ok else "fail\n")
        except OSError:
            pass
    log(f"KVM probe: {'ok, using KVM' if ok else 'failed or hung, using TCG'}")
    return "kvm" if ok else "tcg,thread=multi"


# --------------------------------------------------------------------------------------------


def load_scenarios() -> dict:
    out = {}
    for p in sorted(SCENARIO_DIR.glob("*.py")) + sorted(BENCH_DIR.glob("*.py")):
        if p.name.startswith("_") or not p.read_text().count("SCENARIO = Scenario("):
            continue
        spec = importlib.util.spec_from_file_location(f"scenario_{p.stem}", p)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        sc = getattr(mod, "SCENARIO", None)
        if sc is None:
            continue
        for v in [sc] + list(getattr(mod, "VARIANTS", [])):
            out[v.name] = v
    return out


def print_table(scenarios: dict, claims: list, summaries: list):
    """Markdown rows: every scenario and claim with what it proves and its last passing run."""
    last: dict = {}
    for f in summaries:  # oldest first: later runs win
        doc = json.loads(f.read_text())
        for r in doc["results"]:
            if r["ok"]:
                load = doc.get("load")
                last[r["scenario"]] = (r, doc.get("date", "?") + (f", load {load[0]:.1f}" if load else ""))
    print("| name | tier | what it proves | last passing run (seconds; date, host load average at the end) |\n"
          "|---|---|---|---|")

    def when(name):
        if name not in last:
            return "not run yet"
        r, date = last[name]
        boots = [v["total_s"] for k, v in r["boots"].items() if k.startswith("boot-") and isinstance(v, dict)]
        if "group" in r:
            return f"job {r.get('job_s')} s in {len(boots)} shared boot(s) of {' + '.join(map(str, boots))} s ({date})"
        return f"{' + '.join(map(str, boots))} s in {len(boots)} boot(s) ({date})"
    for sc in scenarios.values():
        tier_ = "full" + ("" if sc.suite else ", by name")
        print(f"| `{sc.name}` | {tier_} | {sc.description} | {when(sc.name)} |")
    for c in claims:
        tier_ = "micro" + (", every kernel" if c.md else "") + ("" if c.suite else ", by name")
        print(f"| `{c.name}` | {tier_} | {c.proves} | {when(c.name)} |")


def guest_seconds(results: list) -> float:
    """Seconds during which at least one of these results' guests ran (the union of their boots'
    intervals: waits for the guest lock excluded, overlapping guests counted once)."""
    spans = sorted((b["wall_start"], b["wall_start"] + b["total_s"]) for b in
                   {r.get("group", r["scenario"]): r["boots"] for r in results}.values() for b in
                   [v for k, v in b.items() if k.startswith("boot-") and isinstance(v, dict) and "wall_start" in v])
    total, end = 0.0, float("-inf")
    for a, b in spans:
        if b > end:
            total += b - max(a, end)
            end = b
    return total


STOP = threading.Event()  # set on SIGTERM/SIGHUP/^C: guests in other threads stop too


def _terminate(signum, frame):
    # Let `finally` blocks stop the running QEMU (never leave a guest behind); guests that run
    # in micro-tier threads see STOP at their next poll.
    STOP.set()
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    sys.path.insert(0, str(HERE))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", type=Path, action="append", default=[],
                    help="guest image dir (from scripts/vm-image.sh SUITE); once per suite")
    ap.add_argument("--dbhost", type=Path, help="static dbhost binary")
    ap.add_argument("--micro", action="append", default=[], metavar="NAME=DIR",
                    help="a micro-tier guest (vm-tests/micro/build.py output); repeatable, the first is "
                         "the default kernel, md claims run on every one")
    ap.add_argument("--share", action="store_true",
                    help="named micro claims share boots as in the suite (by default each boots alone)")
    ap.add_argument("--list", action="store_true", help="list scenarios and exit")
    ap.add_argument("--suites", action="store_true",
                    help="print the Debian suites (images) the selected scenarios need, one a line, and exit")
    ap.add_argument("--table", action="store_true",
                    help="print the README's scenario table (name, what it proves, last measured time) from "
                         "the runs recorded under $DBHOST_VM_RUNS")
    ap.add_argument("scenarios", nargs="*")
    a = ap.parse_args()
    scenarios = load_scenarios()
    from micro import tier
    claims = tier.load_claims()
    micro = {}
    for m in a.micro:
        k, _, d = m.partition("=")
        micro[k] = Path(d)
    kernels = list(micro) or ["default"]
    if a.table:
        print_table(scenarios, claims, sorted(RUNS.glob("summary-*.json")))
        return 0
    if a.list:
        for sc in scenarios.values():
            guest = "" if (sc.image, sc.kernel) == tuple(GUEST_DEFAULTS.values()) else f"[{sc.image}, {sc.kernel} kernel] "
            print(f"{sc.name:34} {'' if sc.suite else '(not in the suite) '}{guest}{sc.description}")
        for c in claims:
            where = "micro, every kernel" if c.md else "micro"
            print(f"{c.name:34} [{where}{'' if c.suite else ', not in the suite'}] {c.proves}")
        return 0
    if a.suites and a.scenarios:
        # Asked before any micro kernel is built (scripts/vm-test.sh): CLAIM@trixie needs the
        # trixie image, whose kernel vm-test.sh then adds to the micro tier.
        claim_names = {c.name for c in claims}
        need, unknown = [], []
        for n in a.scenarios:
            base, _, kern = n.partition("@")
            if n in scenarios:
                need.append(scenarios[n].image)
            elif base in claim_names:
                need += ["bookworm"] + ([kern] if kern in ("trixie", "bookworm") else [])
            else:
                unknown.append(n)
        if unknown:
            print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
            return 2
        print("\n".join(dict.fromkeys(need)))
        return 0
    every = tier.instances(claims, kernels, None)
    if a.scenarios:
        labels = {i.label for i in tier.instances(claims, kernels, [n for n in a.scenarios])}
        unknown = [n for n in a.scenarios if n not in scenarios and n not in labels]
        if unknown:
            known = list(scenarios) + [c.name for c in claims]
            print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
            return 2
        names = [n for n in a.scenarios if n in scenarios]
        picked = tier.instances(claims, kernels, [n for n in a.scenarios if n not in scenarios])
    else:
        names = [n for n, sc in scenarios.items() if sc.suite]
        picked = every
    if a.suites:
        # The micro tier's kernels come from the bookworm image (and trixie's, when given).
        needed = [scenarios[n].image for n in names] + (["bookworm"] if picked else [])
        print("\n".join(dict.fromkeys(needed)))
        return 0
    if not a.image or not a.dbhost:
        print("--image and --dbhost are required (scripts/vm-test.sh provides them)", file=sys.stderr)
        return 2
    images = {image_suite(d): d for d in a.image}
    missing = sorted({scenarios[n].image for n in names} - set(images))
    if missing:
        print(f"no image given for suite(s) {', '.join(missing)} (scripts/vm-image.sh SUITE builds one)",
              file=sys.stderr)
        return 2
    if picked and not micro:
        print("micro-tier claims need --micro NAME=DIR (scripts/vm-test.sh builds it)", file=sys.stderr)
        return 2
    RUNS.mkdir(parents=True, exist_ok=True)
    accel = choose_accel(a.image[0], a.image[0].parent)
    results = []
    t_suite = time.monotonic()
    stages = []
    if picked:
        # Claims named on the command line boot alone; the suite packs them into shared boots.
        groups = tier.pack(picked) if a.share or not a.scenarios else [[i] for i in picked]
        slots = max(1, int(os.environ.get("DBHOST_VM_MICRO_SLOTS", "1")))
        t_micro = time.monotonic()
        micro_results = tier.run_groups(groups, micro, a.dbhost, accel, parallel=slots)
        results += micro_results
        boots = sum(len(b) for b in {r["group"]: r["boots"] for r in micro_results}.values())
        stages.append(f"micro tier: {len(picked)} claims, {len(groups)} groups, {boots} boots, "
                      f"{time.monotonic() - t_micro:.1f} s ({slots} guest(s) at a time; guests running "
                      f"{guest_seconds(micro_results):.1f} s of it)")
        log(stages[-1])
    t_full = time.monotonic()
    for name in names:
        sc = scenarios[name]
        log(f"--- {name}: {sc.description}")
        run = Run(sc, images[sc.image], a.dbhost, accel)
        t0 = time.monotonic()
        err = None
        try:
            run.run()
        except (ScenarioFailure, AssertionError) as e:
            err = str(e) or repr(e)
        except Exception:  # a harness bug: report it as this scenario's failure, go on
            err = "harness error:\n" + traceback.format_exc()
        dt = time.monotonic() - t0
        ok = err is None
        res = {"scenario": name, "ok": ok, "seconds": round(dt, 1), "boots": run.timings, "error": err}
        results.append(res)
        if run.dir.exists():
            (run.dir / "result.json").write_text(json.dumps(res, indent=1) + "\n")
        log(f"{'PASS' if ok else 'FAIL'} {name} ({dt:.1f} s)")
        if not ok:
            log("    " + err.replace("\n", "\n    "))
            log(f"    logs: {run.dir}")
    if names:
        full = [r for r in results if "group" not in r]
        stages.append(f"full image: {len(full)} scenarios, "
                      f"{sum(len([k for k in r['boots'] if k.startswith('boot-')]) for r in full)} boots, "
                      f"{time.monotonic() - t_full:.1f} s")
    for line in stages:
        log(line)
    passed = sum(r["ok"] for r in results)
    failed = len(results) - passed
    doc = json.dumps({"results": results, "seconds": round(time.monotonic() - t_suite, 1), "stages": stages,
                      "date": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                      "load": os.getloadavg()}, indent=1) + "\n"
    (RUNS / "summary.json").write_text(doc)
    (RUNS / f"summary-{int(time.time())}.json").write_text(doc)  # for `--table`
    log(f"suite time {time.monotonic() - t_suite:.1f} s")
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    # Scenarios import `harness`; run main() from that module so the step classes are the same.
    sys.path.insert(0, str(HERE))
    import harness

    try:
        sys.exit(harness.main())
    except KeyboardInterrupt:
        harness.STOP.set()
        raise
