"""bench-raid0 (micro tier): does a RAID-0 of 4 capped disks deliver 4x one disk, with tuning off
and on?

Five blank 2 GiB virtio-scsi data disks (LUN 0-4, serials data1..data5), each throttled by QEMU
like a cloud disk (20 MiB/s and 400 IOPS). In one boot: `dbhost bench --destructive` on data1
alone, `dbhost md create` over data1..data4, bench the array, `dbhost tune --apply`, bench the
array again (named with --md: claims sharing the boot leave arrays of their own), tune data5 (a fresh member, never benched before) and bench it. The host prints
`array / (4 x member)` per pattern, tuning off vs on, into the suite log. Figures only: nothing
is asserted about time or ratios (VM-TESTING.md section 3: the caps are exact, TCG tops out at
~6-8k IOPS in total, so 4 x 400 IOPS is measurable); the scenario fails on malformed JSON, a
pattern that was skipped or reported no throughput, or a failed dbhost command."""

import os

from harness import Disk, expect, log, read_json, read_text
from micro.tier import Claim, MBoot

MEMBERS = 4
# Seconds per pattern: 3 in the suite (the QEMU caps are exact, so the rates settle fast);
# DBHOST_BENCH_SECONDS for longer runs.
SECONDS = int(os.environ.get("DBHOST_BENCH_SECONDS", "3"))
PATTERNS = ["seq-write", "seq-read", "rand-write", "rand-read"]
CAP_BPS = 20 * 1024 * 1024
CAP_IOPS = 400

JOB = f"""
S={SECONDS}; O=$VMTEST_OUT
byid() {{ echo /dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_$1; }}
d() {{ readlink -f "$(byid "$1")"; }}
check "5 data disks present" wait_until 60 test -e "$(byid data5)"
# bench NAME ARGS...: dbhost --output json bench ARGS --destructive --seconds $S > NAME.json
bench() {{ local n=$1; shift
  dbhost --output json bench "$@" --destructive --seconds $S >"$O/$n.json" 2>"$O/$n.err"; }}
# blank DEV: the first 64 KiB and the last 1 MiB are zero (what md create accepts as blank)
blank() {{ cmp -s -n 65536 "$1" /dev/zero &&
  cmp -s -n 1048576 <(dd if="$1" bs=1M skip=$(( $(blockdev --getsize64 "$1") / 1048576 - 1 )) status=none) /dev/zero; }}
for s in data1 data2 data3 data4 data5; do echo "$s -> $(d $s)"; done
for f in $(d data1) $(d data5); do cat /sys/block/$(basename $f)/queue/scheduler; done

check "bench member data1, tuning off (q8)" bench member-off "$(d data1)" -q 8
check "data1 is still blank after the destructive bench" blank "$(d data1)"
check "md create bench over data1..data4" sh -c \\
  "dbhost --output json md create --name bench $(byid data1) $(byid data2) $(byid data3) $(byid data4) >$O/md-create.json"
check "/dev/md/bench exists" wait_until 20 test -b /dev/md/bench
cat /proc/mdstat
check "bench array, tuning off (q32)" bench array-off /dev/md/bench -q 32
check "tune --apply (array)" sh -c \\
  "dbhost --output json tune --apply --md $(basename "$(readlink -f /dev/md/bench)") --disk-mbps 20 --disk-iops {CAP_IOPS} --engine none >$O/tune-array.json"
check "bench array, tuning on (q32)" bench array-on /dev/md/bench -q 32
check "tune --apply (data5)" sh -c \\
  "dbhost --output json tune --apply --disk $(byid data5) --disk-mbps 20 --disk-iops {CAP_IOPS} --engine none >$O/tune-data5.json"
for f in $(d data1) $(d data5); do cat /sys/block/$(basename $f)/queue/scheduler; done
check "bench member data5, tuning on (q8)" bench member-on "$(d data5)" -q 8
for t in off on; do
  check "bench --compare (tuning $t)" sh -c \\
    "dbhost bench --compare $O/member-$t.json $O/array-$t.json --members {MEMBERS} >$O/compare-$t.txt"
  cat "$O/compare-$t.txt"
done
"""


def patterns(rep: dict, name: str) -> dict:
    expect(isinstance(rep, dict) and isinstance(rep.get("results"), list), f"{name}.json: no results list")
    expect(not rep.get("skipped"), f"{name}.json: patterns skipped: {rep.get('skipped')}")
    got = {}
    for r in rep["results"]:
        p = r.get("pattern")
        expect(p in PATTERNS, f"{name}.json: unknown pattern {p!r}")
        for k in ("mb_per_s", "iops", "lat_p50_us", "lat_p99_us"):
            expect(isinstance(r.get(k), (int, float)), f"{name}.json {p}: {k} missing or not a number: {r}")
        expect(r["mb_per_s"] > 0 and r["iops"] > 0, f"{name}.json {p}: no throughput: {r}")
        got[p] = r
    expect(sorted(got) == sorted(PATTERNS), f"{name}.json: patterns {sorted(got)}, expected {sorted(PATTERNS)}")
    return got


def check(run, out):
    reps = {n: patterns(read_json(out / f"{n}.json"), n) for n in ("member-off", "array-off", "array-on", "member-on")}
    for n in ("tune-array", "tune-data5"):
        t = read_json(out / f"{n}.json")
        expect(t.get("applied") is True and t["report"]["knobs"], f"{n}.json: nothing applied: {str(t)[:600]}")
    lines = [f"bench-raid0: {MEMBERS} x 2 GiB virtio-scsi, each capped at {CAP_BPS // (1024 * 1024)} MiB/s "
             f"and {CAP_IOPS} IOPS; {SECONDS} s per pattern; member q8, array q32",
             f"  {'pattern':<11} {'metric':>6} | {'member':>8} {'array':>8} {'ratio':>6} (off) |"
             f" {'member':>8} {'array':>8} {'ratio':>6} (on)"]
    for p in PATTERNS:
        metric = "mb_per_s" if p.startswith("seq") else "iops"
        cells = []
        for t in ("off", "on"):
            m, a = reps[f"member-{t}"][p][metric], reps[f"array-{t}"][p][metric]
            cells.append(f"{m:8.1f} {a:8.1f} {a / (MEMBERS * m):6.2f}")
        lines.append(f"  {p:<11} {'MB/s' if metric == 'mb_per_s' else 'IOPS':>6} | {cells[0]}       | {cells[1]}")
    for t in ("off", "on"):
        lines.append(f"  dbhost bench --compare (tuning {t}):")
        lines += ["    " + x for x in read_text(out / f"compare-{t}.txt").rstrip().splitlines()]
    table = "\n".join(lines)
    (run.dir / "ratios.txt").write_text(table + "\n")
    log(table)


def claims() -> list:
    return [Claim(
        name="bench-raid0",
        proves="dbhost bench: array / (4 x member) per pattern on 4 disks capped at 20 MiB/s and 400 IOPS, "
               "tuning off vs on (figures printed, nothing asserted about time)",
        disks=[Disk(f"d{i}", size="2G", bus="scsi", lun=i - 1, serial=f"data{i}", bps=CAP_BPS, iops=CAP_IOPS)
               for i in range(1, 6)],
        # shares its boot: the claims before it are done when it runs (jobs run one at a time)
        steps=[MBoot(job=JOB, check=check, timeout=600)])]
