"""bench-relocate: database downtime of `dbhost apply` vs a naive stop -> copy -> start, and
dbhost's copy rate vs raw `dd`, in one guest (issue 5 item 8). Figures only: nothing about time
is asserted; the scenario fails on a failed command or a lost acknowledged row.

One boot, no cloud-init (the job does everything): 2 blank no-cache virtio-scsi disks (LUN 0/1),
MariaDB loaded with DBHOST_BENCH_MB MiB of generated data (default 384: 32 MiB of rows,
the rest 64 KiB blobs, which generate ~6x faster under TCG). A client
(`dbwriter.py`, the MySQL protocol over the local socket, python3 standard library) inserts and
commits one row every 1/DBHOST_BENCH_WPS s (default 50/s) for the whole run and records every
acknowledged id with its time. Page cache dropped, then:
  1. `dbhost apply --profile bench-relocate.toml` (qemu-dev.toml, tuning off) `--yes --output json`: array, XFS, mount, datadir moved
     to /datadrive/mysql under the load -> D_dbhost = the longest gap between two acknowledged
     writes while apply ran;
  2. the naive way, same load, same guest: stop MariaDB, `cp -a /datadrive/mysql
     /datadrive/mysql-naive` (same array), a `datadir=` drop-in read after dbhost's, start ->
     D_naive;
  3. raw bandwidth: `dd` O_DIRECT from the OS disk to a scratch file on the array, as many bytes
     as dbhost's pass 1 copied (and read-only / write-only dd for the breakdown).
Host side: every acknowledged id must be in the table at the end (correctness, asserted);
D_dbhost / D_naive (target <= 0.1) and pass-1 rate / dd rate (target >= 0.9) are printed with
the breakdown of both downtimes, into the suite log and runs/bench-relocate/ratios.txt.
"""

import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scenarios"))
from _mariadb import LOAD, events, load_sizes  # noqa: E402
from harness import Boot, Disk, Scenario, expect, log, read_text  # noqa: E402

# qemu-dev.toml with tuning off: the comparison is about moving the data; a tuned buffer pool
# changes how long a start takes, and both methods' starts run the same configuration this way.
PROFILE_NAME = "bench-relocate.toml"
PROFILE = f"/usr/local/share/dbhost/profiles/{PROFILE_NAME}"
PROFILE_TEXT = (Path(__file__).resolve().parents[2] / "profiles" / "qemu-dev.toml").read_text().replace(
    "[tuning]\nenabled = true", "[tuning]\nenabled = false")
assert "enabled = false" in PROFILE_TEXT
MB = int(os.environ.get("DBHOST_BENCH_MB", "384"))
WPS = float(os.environ.get("DBHOST_BENCH_WPS", "50"))
# 32 MiB of ordinary rows (dbload: InnoDB + MyISAM + Aria, ~300 bytes per row), the rest as
# 64 KiB blobs: ~6x faster to generate under TCG for the same datadir size.
ROWS, BLOBS = load_sizes(MB, rows_mb=32)
# The datadir (data + ~150 MiB of InnoDB logs and undo) twice on the array, plus dd's scratch.
DISK = f"{max(2, (MB * 3) // 1024 + 1)}G"
WRITER = (Path(__file__).resolve().parent / "dbwriter.py").read_text()


JOB = f"""
O=$VMTEST_OUT
phase() {{ echo "$1 $(date +%s.%N)" >>"$O/phases.txt"; }}
secs() {{ python3 -c 'import sys; print(f"{{float(sys.argv[2]) - float(sys.argv[1]):.3f}}")' "$1" "$2"; }}
mkdir -p /usr/local/bin
cat >/usr/local/bin/dbload <<'EOF_LOAD'
{LOAD}EOF_LOAD
cat >/usr/local/bin/dbwriter <<'EOF_WRITER'
{WRITER}EOF_WRITER
chmod 755 /usr/local/bin/dbload /usr/local/bin/dbwriter
systemctl start mariadb
check "MariaDB is active" systemctl is-active mariadb
t0=$(date +%s)
/usr/local/bin/dbload {ROWS} {BLOBS} >"$O/load.log" 2>&1
mysql -e "CREATE DATABASE bench; CREATE TABLE bench.w (id BIGINT PRIMARY KEY, t DOUBLE, pad VARCHAR(100)) ENGINE=InnoDB"
echo "load_s=$(( $(date +%s) - t0 ))" >>"$O/timing.txt"
du -sb /var/lib/mysql >"$O/du-before.txt"
/usr/local/bin/dbwriter "$O/acked.txt" {WPS} 1 &
wp=$!
sleep 5
sync; echo 3 >/proc/sys/vm/drop_caches
phase apply-start
dbhost apply --profile {PROFILE} --yes --output json >"$O/apply.out" 2>"$O/apply.err"; echo $? >"$O/apply.rc"
phase apply-end
check "dbhost apply exited 0" test "$(cat $O/apply.rc)" = 0
check "datadir is /datadrive/mysql" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql/
sleep 5
# The naive way: stop, copy within the array, point the datadir at the copy, start.
dropin=$(ls /etc/mysql/*/zz-dbhost.cnf | head -n1)
sync; echo 3 >/proc/sys/vm/drop_caches
phase naive-start
a=$(date +%s.%N); systemctl stop mariadb
b=$(date +%s.%N); cp -a /datadrive/mysql /datadrive/mysql-naive
c=$(date +%s.%N); printf '[mysqld]\\ndatadir = /datadrive/mysql-naive\\n' >"$(dirname "$dropin")/zzz-bench-naive.cnf"
systemctl start mariadb
d=$(date +%s.%N)
phase naive-end
echo "naive_stop_s=$(secs $a $b) naive_copy_s=$(secs $b $c) naive_start_s=$(secs $c $d)" >>"$O/timing.txt"
sleep 5
kill -TERM $wp; wait $wp
check "datadir is /datadrive/mysql-naive" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql-naive/
mysql -NBe "SELECT id FROM bench.w ORDER BY id" >"$O/present.txt"
check "rows read back" test -s "$O/present.txt"
du -sb /datadrive/mysql /datadrive/mysql-naive >"$O/du-after.txt"
# Raw bandwidth: as many bytes as dbhost's pass 1 copied, from the OS disk (where the datadir
# was) to the array, O_DIRECT both ways; then read-only and write-only.
bytes=$(python3 -c 'import json, re, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == "finished" and e.get("step") == "db.pass1":
        print(re.search(r"([0-9]+) bytes", e["outcome"]["detail"]).group(1))' "$O/apply.out")
count=$(( (bytes + 4194303) / 4194304 ))
src=$(findmnt -no SOURCE /); [ -b "$src" ] || src=/dev/vda
echo "dd: $count x 4 MiB from $src" >"$O/dd.txt"
sync; echo 3 >/proc/sys/vm/drop_caches
dd if="$src" of=/datadrive/dd-scratch bs=4M count=$count iflag=direct oflag=direct 2>>"$O/dd.txt"
check "dd copy ran" grep -q copied "$O/dd.txt"
echo "--- read" >>"$O/dd.txt"
dd if="$src" of=/dev/null bs=4M count=$count skip=$count iflag=direct 2>>"$O/dd.txt"
echo "--- write" >>"$O/dd.txt"
dd if=/dev/zero of=/datadrive/dd-scratch bs=4M count=$count oflag=direct conv=notrunc 2>>"$O/dd.txt"
rm -f /datadrive/dd-scratch
# What one guest CPU hashes (sha256, as dbhost's pass 1 does while copying), for the figures.
a=$(date +%s.%N); head -c 64M /dev/zero | sha256sum >/dev/null; b=$(date +%s.%N)
echo "sha256_64MiB_s=$(secs $a $b)" >>"$O/timing.txt"
cat "$O/timing.txt" "$O/dd.txt"
"""


def dd_rates(text: str) -> list:
    """Bytes/s of each dd run, in order ("N bytes (...) copied, S s, ...")."""
    return [int(b) / float(s) for b, s in re.findall(r"^(\d+) bytes .* copied, ([0-9.]+) s", text, re.M)]


def max_gap(acks: list, start: float, end: float) -> tuple:
    """Longest interval between consecutive acknowledgements that overlaps [start, end]."""
    best = (0.0, start)
    for a, b in zip(acks, acks[1:]):
        if b >= start and a <= end and b - a > best[0]:
            best = (b - a, a)
    return best


def check(run, out):
    evs = events(out / "apply.out")
    fin = {e["step"]: e for e in evs if e.get("event") == "finished"}
    failed = [e for e in evs if e.get("event") == "failed"]
    expect(not failed, f"apply failed: {failed}")
    for s in ("db.pass1", "db.stop", "db.pass2", "db.verify-delta", "db.start"):
        expect(s in fin, f"apply.out: no finished event for {s}")

    def detail_bytes(step):
        m = re.search(r"(\d+) bytes", fin[step]["outcome"].get("detail") or "")
        expect(m, f"{step}: no byte count in {fin[step]}")
        return int(m.group(1))

    # Correctness: every acknowledged row is there after both moves.
    acked = {}
    for line in read_text(out / "acked.txt").split("\n"):
        if line.strip():
            i, t = line.split()
            acked[int(i)] = float(t)
    present = {int(x) for x in read_text(out / "present.txt").split()}
    lost = sorted(set(acked) - present)
    expect(acked, "the writer acknowledged nothing")
    expect(not lost, f"{len(lost)} acknowledged row(s) lost, e.g. {lost[:20]}")

    ph = {}
    for line in read_text(out / "phases.txt").splitlines():
        k, v = line.split()
        ph[k] = float(v)
    times = sorted(acked.values())
    d_dbhost, at_d = max_gap(times, ph["apply-start"], ph["apply-end"])
    d_naive, at_n = max_gap(times, ph["naive-start"], ph["naive-end"])
    steady = sorted(b - a for a, b in zip(times, times[1:]))
    median = steady[len(steady) // 2]
    timing = dict(kv.split("=", 1) for kv in read_text(out / "timing.txt").split())
    dd = dd_rates(read_text(out / "dd.txt"))
    expect(len(dd) == 3, f"dd.txt: expected 3 dd runs: {read_text(out / 'dd.txt')[-800:]}")
    p1_bytes, p1_s = detail_bytes("db.pass1"), fin["db.pass1"]["seconds"]
    p1_rate = p1_bytes / p1_s
    du = read_text(out / "du-before.txt").split()[0]
    down_steps = ["db.stop", "db.pass2", "db.verify-delta", "db.switch-config", "db.keep-old", "db.start"]
    in_window = sum(fin[s]["seconds"] for s in down_steps if s in fin)

    def step_line(s):
        if s not in fin:
            return f"    {s:<16} -"
        d = fin[s]["outcome"].get("detail") or ""
        return f"    {s:<16} {fin[s]['seconds']:7.2f} s  {d}"

    mib = 1024 * 1024
    lines = [
        f"bench-relocate: MariaDB datadir {int(du) / mib:.0f} MiB ({MB} MiB generated, load {timing.get('load_s')} s), "
        f"writer {WPS:g} commits/s ({len(acked)} acknowledged, none lost; median interval {median * 1000:.0f} ms)",
        f"  downtime (longest gap between acknowledged commits):",
        f"    dbhost apply   D_dbhost = {d_dbhost:7.2f} s",
        f"    naive          D_naive  = {d_naive:7.2f} s   (stop {timing['naive_stop_s']} s, cp -a {timing['naive_copy_s']} s, "
        f"start {timing['naive_start_s']} s)",
        f"    ratio D_dbhost / D_naive = {d_dbhost / d_naive:.3f}   (target <= 0.1)",
        f"  dbhost's steps in the downtime window ({in_window:.2f} s in total):",
        *[step_line(s) for s in down_steps],
        f"  copy throughput:",
        f"    dbhost pass 1 (DB running, hashing)  {p1_bytes / mib:8.1f} MiB in {p1_s:6.2f} s = {p1_rate / mib:7.1f} MiB/s",
        f"    dd O_DIRECT OS disk -> array file      {dd[0] / mib:7.1f} MiB/s  (read only {dd[1] / mib:.1f}, write only {dd[2] / mib:.1f})",
        f"    ratio pass 1 / dd = {p1_rate / dd[0]:.3f}   (target >= 0.9)",
        f"    sha256sum in the guest: {64 / float(timing['sha256_64MiB_s']):.1f} MiB/s (one CPU)",
        f"  other dbhost steps:",
        *[step_line(s) for s in ("db.verify-pass1", "db.health")],
    ]
    table = "\n".join(lines)
    (run.dir / "ratios.txt").write_text(table + "\n")
    (run.dir / "figures.json").write_text(json.dumps({
        "datadir_bytes": int(du), "d_dbhost_s": d_dbhost, "d_naive_s": d_naive,
        "downtime_ratio": d_dbhost / d_naive, "pass1_bytes": p1_bytes, "pass1_s": p1_s,
        "dd_copy_bps": dd[0], "dd_read_bps": dd[1], "dd_write_bps": dd[2], "copy_ratio": p1_rate / dd[0],
        "steps": {s: {"seconds": fin[s]["seconds"], "detail": fin[s]["outcome"].get("detail")} for s in fin},
        "timing": timing, "acked": len(acked), "median_interval_s": median,
    }, indent=1) + "\n")
    run.timings["figures"] = {"d_dbhost_s": round(d_dbhost, 2), "d_naive_s": round(d_naive, 2),
                              "pass1_mib_s": round(p1_rate / mib, 1), "dd_mib_s": round(dd[0] / mib, 1)}
    log(table)


SCENARIO = Scenario(
    name="bench-relocate",
    description=f"downtime of dbhost apply vs naive stop/cp/start under a write load ({MB} MiB); pass-1 rate vs dd",
    disks=[
        Disk("lun0", size=DISK, bus="scsi", lun=0, serial="data-lun0"),
        Disk("lun1", size=DISK, bus="scsi", lun=1, serial="data-lun1"),
    ],
    user_data=None,  # no cloud-init: the job does everything
    profiles={PROFILE_NAME: PROFILE_TEXT},
    mask=["postgresql.service"],
    suite=False,  # a benchmark: run by name
    steps=[Boot(job=JOB, check=check, timeout=1500)],
)
