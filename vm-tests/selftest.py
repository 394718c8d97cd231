#!/usr/bin/env python3
"""Self-test of the harness's host-side checks (no QEMU, no root): the checks accept a correct
inventory and reject deliberately broken ones. Run by scripts/vm-test.sh before any guest."""

import copy
import json
import os
import subprocess
import tempfile
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checks  # noqa: E402
import harness  # noqa: E402

G = 1024 ** 3


def disk(name, serial, role, lun=None, size=2 * G, transport="scsi", refusals=()):
    return {"name": name, "serial": serial, "role": {"kind": role}, "lun": lun, "size_bytes": size,
            "transport": transport, "by_id": [f"scsi-0QEMU_QEMU_HARDDISK_{serial}"],
            "refusals": [{"reason": r} for r in refusals]}


GOOD = {"schema": 1, "platform": "qemu", "disks": [
    disk("vda", "os-disk", "os", transport="virtio", size=4 * G, refusals=["os_disk"]),
    disk("sda", "azdata-b", "data", lun=1, size=2 * G),
    disk("sdb", "azdata-a", "data", lun=0, size=3 * G),
    disk("nvme0n1", "nvme-data0", "data", transport="nvme", size=G),
    disk("sr0", None, "unknown", transport="ata", size=376832, refusals=["not_a_disk"]),
]}
EXPECT = dict(os_serial="os-disk", data={
    "azdata-a": {"lun": 0, "size": 3 * G, "transport": "scsi"},
    "azdata-b": {"lun": 1, "size": 2 * G, "transport": "scsi"},
    "nvme-data0": {"size": G, "transport": "nvme"},
})


def broken_variants():
    def mut(fn):
        inv = copy.deepcopy(GOOD)
        fn(inv)
        return inv
    d = lambda inv, n: next(x for x in inv["disks"] if x["name"] == n)  # noqa: E731
    yield "luns swapped", mut(lambda i: (d(i, "sda").update(lun=0), d(i, "sdb").update(lun=1)))
    yield "os disk a candidate", mut(lambda i: d(i, "vda").update(refusals=[]))
    yield "os disk wrong role", mut(lambda i: d(i, "vda").update(role={"kind": "data"}))
    yield "data disk refused", mut(lambda i: d(i, "sdb").update(refusals=[{"reason": "has_partitions"}]))
    yield "nvme missing", mut(lambda i: i["disks"].remove(d(i, "nvme0n1")))
    yield "cdrom a candidate", mut(lambda i: d(i, "sr0").update(refusals=[]))
    yield "wrong platform", mut(lambda i: i.update(platform="other"))
    yield "wrong size", mut(lambda i: d(i, "sda").update(size_bytes=3 * G))
    yield "no lun", mut(lambda i: d(i, "sdb").update(lun=None))
    yield "schema", mut(lambda i: i.update(schema=2))
    yield "role unknown", mut(lambda i: d(i, "nvme0n1").update(role={"kind": "unknown"}))


def micro_selftest() -> int:
    """The micro tier's claims load, are well-formed, and pack into boots within the limits; the
    micro checks reject broken inventories."""
    from micro import tier
    failures = 0
    claims = tier.load_claims()
    for c in claims:
        if not c.boots():
            print(f"selftest: micro claim {c.name} has no boot")
            failures += 1
    groups = tier.pack(tier.instances(claims, ["k1", "k2"], None))
    for g in groups:
        c = [i.claim for i in g]
        if len({i.kernel for i in g}) != 1 or len({len(x.boots()) for x in c}) != 1:
            print(f"selftest: micro group mixes kernels or boot counts: {[i.label for i in g]}")
            failures += 1
        if len(g) > 1 and any(x.solo for x in c):
            print(f"selftest: a solo claim shares a boot: {[i.label for i in g]}")
            failures += 1
        disks = [d for x in c for d in x.disks + x.late_disks]
        if sum(d.bus == "scsi" for d in disks) > tier.MAX_SCSI or sum(d.bus != "scsi" for d in disks) > \
                tier.MAX_PCI_DISKS or len(g) > tier.MAX_CLAIMS:
            print(f"selftest: micro group over its limits: {[i.label for i in g]}")
            failures += 1
        serials = [d.serial_() for d in disks]
        if len(serials) != len(set(serials)):
            print(f"selftest: micro group reuses a serial: {[i.label for i in g]}")
            failures += 1
    labels = [i.label for g in groups for i in g]
    md = [c for c in claims if c.md and c.suite]
    if len(labels) != len(set(labels)) or sum("@k2" in x for x in labels) != len(md):
        print("selftest: micro instances wrong: md claims must run once per kernel, others once")
        failures += 1
    inv = {"schema": 1, "platform": "qemu", "disks": [
        disk("sda", "s-a", "data", lun=3, size=64 * 1024 ** 2),
        {**disk("sdb", "s-b", "unknown", lun=4), "refusals": [{"reason": "holds_signature", "kind": "xfs",
                                                                "offset": 0}]}]}
    checks.check_candidates(inv, {"s-a": {"lun": 3, "size": 64 * 1024 ** 2, "transport": "scsi"}})
    checks.check_refused(inv, "s-b", "holds_signature", kind="xfs")
    for what, fn in [("wrong lun", lambda: checks.check_candidates(inv, {"s-a": {"lun": 2}})),
                     ("refused taken as candidate", lambda: checks.check_candidates(inv, {"s-b": {}})),
                     ("wrong kind", lambda: checks.check_refused(inv, "s-b", "holds_signature", kind="ext4")),
                     ("candidate taken as refused", lambda: checks.check_refused(inv, "s-a", "holds_signature"))]:
        try:
            fn()
            print(f"selftest: micro check accepted: {what}")
            failures += 1
        except checks.CheckError:
            pass
    return failures


def main():
    failures = 0
    checks.check_inventory(GOOD, **EXPECT)
    for name, inv in broken_variants():
        try:
            checks.check_inventory(inv, **EXPECT)
        except checks.CheckError:
            continue
        print(f"selftest: broken inventory '{name}' was accepted")
        failures += 1
    # every scenario loads and is well-formed
    scs = harness.load_scenarios()
    for sc in scs.values():
        if not sc.steps or not any(isinstance(s, harness.Boot) for s in sc.steps):
            print(f"selftest: scenario {sc.name} has no boot step")
            failures += 1
        luns = [d.lun for d in sc.disks if d.bus == "scsi" and d.lun is not None]
        if len(luns) != len(set(luns)):
            print(f"selftest: scenario {sc.name} reuses a LUN")
            failures += 1
    # the guest's check lines are valid JSON whatever a command printed (quotes, backslashes,
    # newlines, escape sequences, bytes that are not UTF-8)
    lib = Path(harness.__file__).parent / "lib" / "guest-lib.sh"
    with tempfile.TemporaryDirectory() as t:
        nasty = 'a "q" \\ b\n\tc\r \x01\x1b[0m \xff\xfe z'
        subprocess.run(["bash", "-c", f'. "{lib}"; check "n\\\"1" printf "$(printf \'%b\' \'{nasty}\')"; '
                        'check "fails" false'], env={"VMTEST_OUT": t, "PATH": os.environ["PATH"]},
                       check=True, capture_output=True)
        rows = [json.loads(x) for x in (Path(t) / "checks.jsonl").read_bytes().decode("utf-8").splitlines()]
        if [r["ok"] for r in rows] != [True, False] or 'a "q"' not in rows[0]["detail"] \
                or "\n\tc" not in rows[0]["detail"] or rows[0]["name"] != 'n"1':
            print(f"selftest: guest-lib check lines wrong: {rows}")
            failures += 1
    # cloud-init "done" from the files `cloud-init status` reads (cloud-init 22.4's layout)
    with tempfile.TemporaryDirectory() as t:
        d = Path(t)
        stage = {"errors": [], "start": 1.0, "finished": 2.0}
        good = {"v1": {"datasource": "DataSourceNoCloud", "stage": None, "init-local": stage, "init": stage,
                       "modules-config": stage, "modules-final": stage}}
        cases = [(good, {"v1": {"datasource": "x", "errors": []}}, True),
                 (good, None, False),  # final stage never ended
                 ({"v1": {**good["v1"], "stage": "modules-final"}}, {"v1": {"errors": []}}, False),
                 ({"v1": {**good["v1"], "init": {**stage, "errors": ["boom"]}}}, {"v1": {"errors": ["boom"]}}, False)]
        for status, result, ok in cases:
            (d / "cloud-init-status.json").write_text(json.dumps(status))
            (d / "cloud-init-result.json").unlink(missing_ok=True)
            if result is not None:
                (d / "cloud-init-result.json").write_text(json.dumps(result))
            try:
                harness.cloud_init_done(d, 1)
                got = True
            except harness.ScenarioFailure:
                got = False
            if got != ok:
                print(f"selftest: cloud_init_done said {got} for {status} / {result}")
                failures += 1
    failures += micro_selftest()
    assert harness.size_bytes("2G") == 2 * G and harness.size_bytes("512M") == 512 * 1024 ** 2
    # guest time: overlapping boots counted once, boots of claims sharing a group once
    boot = lambda s, t: {"wall_start": s, "total_s": t}  # noqa: E731
    rs = [{"group": "g1", "scenario": "a", "boots": {"boot-1": boot(0, 10)}},
          {"group": "g1", "scenario": "b", "boots": {"boot-1": boot(0, 10)}},
          {"group": "g2", "scenario": "c", "boots": {"boot-1": boot(5, 10), "boot-2": boot(30, 4)}}]
    if harness.guest_seconds(rs) != 19:
        print(f"selftest: guest_seconds {harness.guest_seconds(rs)}, expected 19")
        failures += 1
    print(f"selftest: {'ok' if not failures else 'FAILED'} ({len(scs)} scenarios loaded)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
