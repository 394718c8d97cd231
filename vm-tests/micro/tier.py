"""The micro tier: named claims that run in busybox-initramfs guests (no systemd, no database,
no root disk; ~10 s per boot under TCG), several claims sharing one boot.

A claim is what one scenario proves (its name says what), with its own disks, guest jobs and
host checks. Claims are generated from parameters by the modules in vm-tests/micro/claims/
(`def claims(): return [Claim(...), ...]`, called once per kernel so every instance has its own
Disk objects). In a suite run, claims with the same number of boots are packed into groups that
share those boots: each claim's job runs in turn inside the guest (bounded by `timeout`, in a
results directory of its own), then its checks run on the host; one claim failing fails only
that claim. A claim marked `solo` (hot-plug, timing, many disks, commands with host-wide effect
such as `dbhost assemble` or `apply`) gets boots of its own. Run by name, a claim boots alone.

The guest is made by micro/build.py from a guest image's kernel, modules and tools; the harness
pieces (Disk, QMP, the bounded boot loop, the guest lock) are harness.py's. md claims (`md=True`)
run on every micro kernel given (`--micro NAME=DIR`, repeatable); the others on the first one.
Names: CLAIM on the first kernel, CLAIM@NAME on another.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import harness
from harness import Boot, Disk, Host, Run, Scenario, ScenarioFailure, log

HERE = Path(__file__).resolve().parent
CLAIM_DIR = HERE / "claims"
# Packing limits of one shared boot: SCSI LUNs on the one virtio-scsi controller, PCI slots for
# NVMe and virtio-blk disks (the pc machine has 32, the bed uses a few), claims per boot (one
# claim that hangs costs the whole boot its timeout).
MAX_SCSI = 64
MAX_PCI_DISKS = 16
MAX_CLAIMS = 16


@dataclass
class MBoot:
    """One boot of a claim: its bash job (guest-lib.sh and mdlib's PRELUDE helpers available;
    $VMTEST_OUT is the claim's own results directory, its previous boot's results are in
    $VMTEST_JOB/claims/$CLAIM/prev/) and its host check fn(run, out)."""

    job: str = ""
    check: Optional[Callable] = None
    on_mark: dict = field(default_factory=dict)  # mark name -> [actions] (marks are per claim)
    timeout: int = 240  # bound on this claim's job in the guest (timeout -s KILL)


@dataclass
class Claim:
    name: str
    proves: str  # one line: what passing proves
    disks: list
    steps: list  # MBoot | Host(fn(run)), in order
    late_disks: list = field(default_factory=list)  # attached by HotAdd actions
    solo: bool = False
    md: bool = False  # an md claim: runs on every micro kernel
    memory_mb: int = 512
    profiles: dict = field(default_factory=dict)
    suite: bool = True
    kernel_args: list = field(default_factory=list)  # e.g. vmtest.mdadm-udev (needs solo)

    def boots(self) -> list:
        return [s for s in self.steps if isinstance(s, MBoot)]


def load_claims() -> list:
    """Every claim factory's claims (fresh objects on every call)."""
    out = []
    for p in sorted(CLAIM_DIR.glob("*.py")):
        if p.name.startswith("_"):
            continue
        name = f"micro_claims_{p.stem}"
        mod = sys.modules.get(name)
        if mod is None:
            spec = importlib.util.spec_from_file_location(name, p)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
        out += mod.claims()
    names = [c.name for c in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit(f"micro: duplicate claim names {sorted(dup)}")
    return out


# --------------------------------------------------------------------------------------------
# Groups: claims sharing boots


@dataclass
class Instance:
    claim: Claim
    kernel: str  # micro kernel name
    label: str  # claim name as reported (NAME or NAME@KERNEL)


def pack(instances: list) -> list:
    """Split claim instances into groups that can share boots (same kernel, same boot count,
    within the packing limits); solo claims alone. Order is kept."""
    groups = []
    open_groups: dict = {}
    for inst in instances:
        c = inst.claim
        if c.solo or c.kernel_args:  # a kernel argument changes the whole guest
            groups.append([inst])
            continue
        key = (inst.kernel, len(c.boots()))
        g = open_groups.get(key)
        if g is not None:
            scsi = sum(1 for i in g + [inst] for d in i.claim.disks + i.claim.late_disks if d.bus == "scsi")
            pci = sum(1 for i in g + [inst] for d in i.claim.disks + i.claim.late_disks if d.bus != "scsi")
            if scsi > MAX_SCSI or pci > MAX_PCI_DISKS or len(g) >= MAX_CLAIMS:
                g = None
        if g is None:
            g = []
            groups.append(g)
            open_groups[key] = g
        g.append(inst)
    return groups


MICRO_LIB = r"""
# run_claim NAME SECONDS BOOT: one claim's job of this boot, in its own results directory,
# killed after SECONDS (a hung claim cannot hold the boot).
run_claim() {
  local name=$1 limit=$2 k=$3 d="$VMTEST_OUT/claims/$1" t0 t1 rc
  mkdir -p "$d"
  t0=$(cut -d' ' -f1 /proc/uptime)
  echo "=== claim $name (boot $k) at $t0 s"
  CLAIM=$name VMTEST_OUT=$d VMTEST_CLAIM_BOOT=$k timeout -s KILL "$limit" \
    bash "$VMTEST_JOB/micro-claim.sh" >"$d/stdout" 2>"$d/stderr"
  rc=$?
  t1=$(cut -d' ' -f1 /proc/uptime)
  echo "$rc" >"$d/rc"
  echo "$t0 $t1" >"$d/uptime"
  [ $rc -eq 137 ] && echo "claim $name: killed after $limit s" >>"$d/stderr"
  echo "=== claim $name: rc=$rc, $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s"
  grep -h '"ok":false' "$d/checks.jsonl" 2>/dev/null | head -5
}
"""

MICRO_CLAIM = r"""set -u
. "$VMTEST_JOB/lib.sh"
. "$VMTEST_JOB/prelude.sh"
mark() { echo "VMTEST-MARK $CLAIM:$1" >/dev/ttyS1; echo "mark $1"; }
cd /
. "$VMTEST_JOB/claims/$CLAIM/boot-$VMTEST_CLAIM_BOOT.sh"
"""


class MicroRun(Run):
    """A group's boots: Run's boot loop, QMP actions and guest lock, with the micro guest's
    command line (kernel + micro initramfs, no OS disk) and per-claim verification."""

    guest_kind = "micro"

    def __init__(self, group: list, gid: str, micro: Path, dbhost: Path, accel: str):
        self.group = group
        self.micro = micro
        claims = [i.claim for i in group]
        disks, profiles = [], {}
        lun = 0
        for ci, c in enumerate(claims):
            used = []
            scsi = [d for d in c.disks + c.late_disks if d.bus == "scsi"]
            for i, d in enumerate(scsi):
                rel = d.lun if d.lun is not None else i
                d.lun = lun + rel
                used.append(d.lun)
            lun = max(used) + 1 if used else lun
            for d in c.disks + c.late_disks:
                d.name = f"c{ci}-{d.name}" if len(claims) > 1 else d.name
            disks += c.disks
            profiles.update(c.profiles)
        serials = [d.serial_() for c in claims for d in c.disks + c.late_disks]
        dup = {s for s in serials if serials.count(s) > 1}
        if dup:
            raise ScenarioFailure(f"micro group {gid}: serials used twice: {sorted(dup)}")
        sc = Scenario(name=gid, description=" + ".join(i.label for i in group), steps=[], disks=disks,
                      memory_mb=max(c.memory_mb for c in claims), profiles=profiles)
        super().__init__(sc, micro, dbhost, accel)
        self.failed: dict = {}  # label -> error
        self.job_s: dict = {}  # label -> seconds of its jobs in the guest

    def prepare(self):
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.kernel = {"channel": "9p"}  # the micro command line shares over virtio-9p
        for d in self.sc.disks:
            self.create_disk(d)
            self.disks.append(d)
        job = self.job_share()
        import mdlib
        (job / "prelude.sh").write_text(mdlib.PRELUDE)
        (job / "micro-lib.sh").write_text(MICRO_LIB)
        (job / "micro-claim.sh").write_text(MICRO_CLAIM)

    def qemu_cmd(self, boot: Boot, out: Path, mask: list) -> list:
        m = self.micro
        append = ["console=ttyS0,115200", "panic=-1", "quiet", "mitigations=off", "modprobe.blacklist=floppy"]
        append += [a for i in self.group for a in i.claim.kernel_args]
        cmd = ["qemu-system-x86_64", "-M", "pc", "-accel", self.accel, "-smp", "2", "-m", str(self.sc.memory_mb),
               "-display", "none", "-vga", "none", "-monitor", "none", "-no-reboot", "-nic", "none",
               "-serial", f"file:{self.dir}/console-{self.boot_no}.log",
               "-serial", f"file:{self.dir}/ttyS1-{self.boot_no}.log",
               "-qmp", f"unix:{self.dir}/qmp.sock,server=on,wait=off",
               "-kernel", str(m / "vmlinuz"), "-initrd", str(m / "initrd.img"), "-append", " ".join(append),
               "-virtfs", f"local,path={self.dir / 'job'},mount_tag=vmjob,security_model=none,readonly=on,id=vmjob",
               "-virtfs", f"local,path={out},mount_tag=vmout,security_model=none,id=vmout",
               "-device", "virtio-scsi-pci,id=scsi0"]
        for i, d in enumerate(self.disks):
            cmd += self.drive_args(d, i)
        return cmd

    def cloud_init_runs(self, boot: Boot) -> bool:
        return False

    def verify_boot(self, b: Boot, out: Path):
        """The group's boot finished; each claim is judged on its own (claim_verdicts)."""
        if not (out / "rc").exists():
            init_fail = [ln for ln in (self.dir / f"ttyS1-{self.boot_no}.log").read_text(errors="replace")
                         .splitlines() if ln.startswith("VMTEST-INIT-FAILED")] \
                if (self.dir / f"ttyS1-{self.boot_no}.log").exists() else []
            raise ScenarioFailure(f"boot {self.boot_no}: the job did not finish {init_fail} (see "
                                  f"{self.dir}/console-{self.boot_no}.log and ttyS1-{self.boot_no}.log)")

    # ------------------------------------------------------------------ the group's steps
    def claim_out(self, label: str, boot: Optional[int] = None) -> Path:
        return self.out(boot) / "claims" / label

    def judge(self, inst: Instance, mb: MBoot, out: Path):
        rc_f = out / "rc"
        if not rc_f.exists():
            raise ScenarioFailure("its job did not run (no rc)")
        rc = int(rc_f.read_text().strip() or "-1")
        up = (out / "uptime").read_text().split() if (out / "uptime").exists() else []
        if len(up) == 2:
            self.job_s[inst.label] = round(self.job_s.get(inst.label, 0) + float(up[1]) - float(up[0]), 1)
        failed = []
        if (out / "checks.jsonl").exists():
            for line in (out / "checks.jsonl").read_text().splitlines():
                c = json.loads(line)
                if not c["ok"]:
                    failed.append(f"{c['name']}: {c['detail']}")
        if rc != 0:
            err = (out / "stderr").read_text(errors="replace")[-1500:] if (out / "stderr").exists() else ""
            raise ScenarioFailure(f"job exit code {rc}; stderr tail:\n{err}" +
                                  ("\n  " + "\n  ".join(failed) if failed else ""))
        if failed:
            raise ScenarioFailure("guest checks failed:\n  " + "\n  ".join(failed))
        if mb.check:
            mb.check(self, out)

    def run_group(self):
        self.prepare()
        nboots = len(self.group[0].claim.boots())
        cursor = {i.label: 0 for i in self.group}  # index into each claim's steps

        def host_steps(inst: Instance):
            steps = inst.claim.steps
            while cursor[inst.label] < len(steps) and isinstance(steps[cursor[inst.label]], Host):
                if inst.label not in self.failed:
                    self.guard(inst, lambda: steps[cursor[inst.label]].fn(self))
                cursor[inst.label] += 1

        for k in range(1, nboots + 1):
            lines = ['. "$VMTEST_JOB/micro-lib.sh"']
            on_mark: dict = {}
            booted = []
            for inst in self.group:
                host_steps(inst)
                mb = inst.claim.steps[cursor[inst.label]]
                cursor[inst.label] += 1
                if inst.label in self.failed:
                    continue
                d = self.dir / "job" / "claims" / inst.label
                d.mkdir(parents=True, exist_ok=True)
                (d / f"boot-{k}.sh").write_text(mb.job)
                if k > 1:  # the claim's results of its previous boot: $VMTEST_JOB/claims/$CLAIM/prev/
                    shutil.rmtree(d / "prev", ignore_errors=True)
                    shutil.copytree(self.claim_out(inst.label, k - 1), d / "prev")
                lines.append(f"run_claim {inst.label} {mb.timeout} {k}")
                for m, acts in mb.on_mark.items():
                    on_mark[f"{inst.label}:{m}"] = acts
                booted.append((inst, mb))
            if not booted:
                break
            timeout = 90 + sum(mb.timeout for _, mb in booted)
            try:
                self.boot(Boot(job="\n".join(lines) + "\n", on_mark=on_mark, timeout=timeout))
            except (ScenarioFailure, AssertionError) as e:
                for inst, _ in booted:
                    self.failed.setdefault(inst.label, f"boot {k}: {e}")
                break
            for inst, mb in booted:
                self.guard(inst, lambda: self.judge(inst, mb, self.claim_out(inst.label, k)), f"boot {k}: ")
        for inst in self.group:
            host_steps(inst)

    def guard(self, inst: Instance, fn, prefix: str = ""):
        try:
            fn()
        except (ScenarioFailure, AssertionError) as e:
            self.failed.setdefault(inst.label, prefix + (str(e) or repr(e)))
        except Exception:
            self.failed.setdefault(inst.label, prefix + "harness error:\n" + traceback.format_exc())


def run_groups(groups: list, micro: dict, dbhost: Path, accel: str, parallel: int = 1) -> list:
    """Run the groups (in `parallel` threads); one result dict per claim instance."""
    results = []

    def one(gi: int, group: list) -> list:
        first = group[0]
        gid = first.label.replace("@", "-at-") if len(group) == 1 else f"micro-g{gi:02d}"
        log(f"--- micro {gid} ({first.kernel}): {', '.join(i.label for i in group)}")
        t0 = time.monotonic()
        err = None
        run = None
        try:
            run = MicroRun(group, gid, micro[first.kernel], dbhost, accel)
            run.run_group()
        except (ScenarioFailure, AssertionError) as e:
            err = str(e) or repr(e)
        except Exception:
            err = "harness error:\n" + traceback.format_exc()
        dt = time.monotonic() - t0
        out = []
        for inst in group:
            e = err or (run.failed.get(inst.label) if run else None)
            res = {"scenario": inst.label, "ok": e is None, "seconds": round(dt, 1), "group": gid,
                   "kernel": inst.kernel, "job_s": run.job_s.get(inst.label) if run else None,
                   "boots": run.timings if run else {}, "error": e}
            out.append(res)
            log(f"{'PASS' if e is None else 'FAIL'} {inst.label} (job {res['job_s']} s; {gid}: {dt:.1f} s)")
            if e:
                log("    " + e.replace("\n", "\n    "))
                log(f"    logs: {harness.RUNS / gid}")
        if run and run.dir.exists():
            (run.dir / "result.json").write_text(json.dumps(out, indent=1) + "\n")
        return out

    if parallel <= 1:
        for gi, g in enumerate(groups):
            results += one(gi, g)
    else:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=parallel) as ex:
            for r in ex.map(lambda a: one(*a), list(enumerate(groups))):
                results += r
    return results


def instances(claims: list, kernels: list, names: Optional[list]) -> list:
    """Claim instances for the kernels (md claims on all, others on the first), filtered by name."""
    out = []
    for ki, k in enumerate(kernels):
        for c in (claims if ki == 0 else load_claims()):
            if ki > 0 and not c.md:
                continue
            label = c.name if ki == 0 else f"{c.name}@{k}"
            if names is not None and label not in names:
                continue
            if names is None and not c.suite:
                continue
            out.append(Instance(c, k, label))
    return out
