#!/usr/bin/env python3
"""vm-tests harness: boots Debian guests in QEMU with cloud-like data disks and runs dbhost.

Python 3 standard library only. Entry point: scripts/vm-test.sh (builds the static binary and the
guest image, then runs `harness.py --image DIR --dbhost BIN [SCENARIO...]`).

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

    def serial_(self) -> str:
        return self.serial or self.name


@dataclass
class HotAdd:
    disk: Disk


@dataclass
class HotRemove:
    name: str


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

    def wait_event(self, name: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
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

    # paths
    def disk_path(self, d: Disk) -> Path:
        return self.dir / f"disk-{d.name}.img"

    def out(self, boot: Optional[int] = None) -> Path:
        return self.dir / f"out-{boot or self.boot_no}"

    def prepare(self):
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        base = self.image / ("root.img" if self.sc.variant == "base" else f"root-{self.sc.variant}.img")
        if not base.is_file():
            raise ScenarioFailure(f"guest image {base} missing (run scripts/vm-image.sh)")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base.resolve()),
                        str(self.root)], check=True)
        for d in self.sc.disks:
            self.create_disk(d)
            self.disks.append(d)
        # job share
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
    def drive_args(self, d: Disk, index: int) -> list:
        path = self.disk_path(d)
        drv = f"file={path},format=raw,if=none,id=drv-{d.name},cache={d.cache}"
        if d.cache == "none":
            drv += ",aio=native"
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
                  "mitigations=off"]
        units = list(BOOT_MASK) + list(mask)
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
               "-kernel", str(img / "vmlinuz"), "-initrd", str(img / "initrd.img"), "-append", " ".join(append),
               # The OS disk must be the first virtio-blk device (it becomes /dev/vda).
               "-drive", f"file={self.root},format=qcow2,if=none,id=root,cache=unsafe,discard=unmap",
               "-device", "virtio-blk-pci,drive=root,serial=os-disk",
               "-virtfs", f"local,path={self.dir / 'job'},mount_tag=vmjob,security_model=none,readonly=on,id=vmjob",
               "-virtfs", f"local,path={out},mount_tag=vmout,security_model=none,id=vmout",
               "-device", "virtio-scsi-pci,id=scsi0"]
        for i, d in enumerate(self.disks):
            cmd += self.drive_args(d, i)
        iso = self.seed()
        if iso:
            cmd += ["-drive", f"file={iso},format=raw,media=cdrom,if=ide,readonly=on"]
        return cmd

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
        with one_guest():
            self._run_guest(b, n, cmd, qmp_path, tty1, out)

    def _run_guest(self, b: Boot, n: int, cmd: list, qmp_path: Path, tty1: Path, out: Path):
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(self.dir / f"qemu-{n}.log", "w"),
                                stderr=subprocess.STDOUT)
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
        total = time.monotonic() - t0
        self.timings[f"boot-{n}"] = {"total_s": round(total, 1),
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
            self.create_disk(d)
            lun = d.lun if d.lun is not None else len(self.disks)
            log(f"    hot-add {d.name} ({d.bus}) at {t:.1f} s")
            node = {"driver": "raw", "node-name": f"drv-{d.name}",
                    "file": {"driver": "file", "filename": str(self.disk_path(d)),
                             "cache": {"direct": d.cache == "none"}}}
            qmp.cmd("blockdev-add", **node)
            pbs = d.physical_block_size or max(d.block_size, 4096)
            dev = {"id": f"dev-{d.name}", "drive": f"drv-{d.name}", "serial": d.serial_(),
                   "logical_block_size": d.block_size, "physical_block_size": pbs}
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
            log(f"    hot-remove {act.name} at {t:.1f} s")
            qmp.cmd("device_del", id=f"dev-{act.name}")
            qmp.wait_event("DEVICE_DELETED", 120)
            self.disks = [d for d in self.disks if d.name != act.name]
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
# Acceleration: TCG unless a short KVM probe boot succeeds (KVM guests hang on some hosts).


@contextlib.contextmanager
def one_guest():
    """Hold the machine-wide guest lock while a QEMU guest runs: one guest at a time (two TCG
    guests on 2 cores only slow each other down and break every bounded wait). Another run of the
    harness (a second checkout, CI) waits here, boot by boot. $DBHOST_VM_LOCK names the file."""
    path = os.environ.get("DBHOST_VM_LOCK") or ("/run/lock/dbhost-vm-guest.lock" if os.access("/run/lock", os.W_OK)
                                                else "/tmp/dbhost-vm-guest.lock")
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"    waiting for another guest to finish ({path})")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
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
        out[sc.name] = sc
    return out


def _terminate(signum, frame):
    # Let `finally` blocks stop the running QEMU (never leave a guest behind).
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    sys.path.insert(0, str(HERE))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image", type=Path, help="guest image dir (from scripts/vm-image.sh)")
    ap.add_argument("--dbhost", type=Path, help="static dbhost binary")
    ap.add_argument("--list", action="store_true", help="list scenarios and exit")
    ap.add_argument("scenarios", nargs="*")
    a = ap.parse_args()
    scenarios = load_scenarios()
    if a.list:
        for sc in scenarios.values():
            print(f"{sc.name:16} {'' if sc.suite else '(not in the suite) '}{sc.description}")
        return 0
    names = a.scenarios or [n for n, sc in scenarios.items() if sc.suite]
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(scenarios)}", file=sys.stderr)
        return 2
    if not a.image or not a.dbhost:
        print("--image and --dbhost are required (scripts/vm-test.sh provides them)", file=sys.stderr)
        return 2
    RUNS.mkdir(parents=True, exist_ok=True)
    accel = choose_accel(a.image, a.image.parent)
    results = []
    t_suite = time.monotonic()
    for name in names:
        sc = scenarios[name]
        log(f"--- {name}: {sc.description}")
        run = Run(sc, a.image, a.dbhost, accel)
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
    passed = sum(r["ok"] for r in results)
    failed = len(results) - passed
    (RUNS / "summary.json").write_text(json.dumps({"results": results, "seconds": round(time.monotonic() - t_suite, 1)},
                                                  indent=1) + "\n")
    log(f"suite time {time.monotonic() - t_suite:.1f} s")
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    # Scenarios import `harness`; run main() from that module so the step classes are the same.
    sys.path.insert(0, str(HERE))
    import harness

    sys.exit(harness.main())
