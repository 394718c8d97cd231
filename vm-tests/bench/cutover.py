"""bench-cutover: how long clients wait while PostgreSQL moves to new storage, three ways, under
a steady commit load, for one datadir size per run (DBHOST_BENCH_MB, default 256; the README's
table has 256, 1024 and 2048). Figures only: nothing about time is asserted; the run fails on a
failed command, a lost acknowledged row or a changed table.

One boot, no cloud-init. Four blank no-cache LUN disks make two arrays (data1*: /datadrive,
data2*: /datadrive2). Debian's PostgreSQL 15 on the OS disk gets DBHOST_BENCH_MB MiB of
incompressible rows (pgcrypto's gen_random_bytes, stored out of line uncompressed). A client
(pgwriter, the PostgreSQL protocol over the local socket) commits one row every 1/DBHOST_BENCH_WPS
s (default 50/s) for the whole run and records every acknowledged id with its time. The page
cache is dropped before each move. Downtime = the longest gap between two acknowledged commits
while the move ran. The moves, each from where the previous one left the datadir:
  1. two-pass copy: `dbhost apply` (database.method = "copy") OS disk → /datadrive/copy;
  2. replica: `dbhost apply` (method auto: pg_basebackup, streaming replica, stop, catch-up,
     switch, start) /datadrive/copy → /datadrive2/replica;
  3. naive: stop, `cp -a` /datadrive2/replica → /datadrive/naive, data_directory, start.
Host side: every acknowledged id is in the table at the end and the static table's md5 is
unchanged; the figures go to the log, runs/bench-cutover/ratios.txt and
runs/bench-cutover-results.jsonl (one line per run, so runs at several sizes make one table).
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scenarios"))
from _migrate import PGWRITER, max_gap, no_acked_row_lost  # noqa: E402
from _mariadb import events  # noqa: E402
from harness import Boot, Disk, Scenario, expect, log, read_text  # noqa: E402

MB = int(os.environ.get("DBHOST_BENCH_MB", "256"))
WPS = float(os.environ.get("DBHOST_BENCH_WPS", "50"))
ROWS = MB * 1024 * 1024 // 8192
DISK1 = f"{max(2, (MB * 2 + 1536) // 1024 // 2 + 1)}G"
DISK2 = f"{max(2, (MB + 1536) // 1024 // 2 + 1)}G"


def profile(n: int, datadir: str, method: str) -> str:
    return f"""version = 1
description = "bench-cutover: data{n}* disks -> RAID-0 -> XFS -> PostgreSQL ({method})"

[disks]
platform = "qemu"
allowed-cache-modes = ["none"]
assume-cache-mode = "none"
select = "match"
serial = ["data{n}*"]
min-size = "128M"
expected-count = "all"

[array]
name = "bench{n}"

[filesystem]
label = "bench{n}"
mount-point = "{'/datadrive' if n == 1 else '/datadrive2'}"

[database]
engine = "postgresql"
datadir = "{datadir}"
method = "{method}"

[tuning]
enabled = false
"""


PROFILES = {"bench-copy.toml": profile(1, "copy", "copy"),
            "bench-replica.toml": profile(2, "replica", "auto")}
P = "/usr/local/share/dbhost/profiles"

JOB = f"""
O=$VMTEST_OUT
phase() {{ echo "$1 $(date +%s.%N)" >>"$O/phases.txt"; }}
psql_() {{ runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }}
cat >/usr/local/bin/pgwriter <<'EOF_W'
{PGWRITER}EOF_W
chmod 755 /usr/local/bin/pgwriter
sed -i '1i local shop postgres trust' /etc/postgresql/15/main/pg_hba.conf
systemctl start postgresql@15-main
# The OS disk is 4 GiB: keep the WAL small beside a 2 GiB datadir.
psql_ -c "ALTER SYSTEM SET max_wal_size = '256MB'" -c "SELECT pg_reload_conf()" >/dev/null
df -m / >"$O/df-before.txt"
t0=$(date +%s)
psql_ -c "CREATE DATABASE shop"
psql_ -d shop -c "CREATE EXTENSION pgcrypto; CREATE TABLE blob (id int PRIMARY KEY, b bytea); \\
  ALTER TABLE blob ALTER COLUMN b SET STORAGE EXTERNAL; \\
  CREATE TABLE w (id bigint PRIMARY KEY, t double precision, pad text)"
i=0
while [ $i -lt {ROWS} ]; do
  j=$((i + 8192)); [ $j -le {ROWS} ] || j={ROWS}
  psql_ -d shop -c "INSERT INTO blob SELECT g, gen_random_bytes(8000) FROM generate_series($((i + 1)), $j) g"
  i=$j
done
psql_ -c CHECKPOINT
echo "load_s=$(( $(date +%s) - t0 ))" >"$O/timing.txt"
psql_ -d shop -c "SELECT count(*) || ' ' || md5(string_agg(md5(b), '' ORDER BY id)) FROM blob" >"$O/sum-before.txt"
du -sb /var/lib/postgresql/15/main >"$O/du.txt"
echo /var/run/postgresql/.s.PGSQL.5432 >/run/db-endpoint
PGUSER=postgres /usr/local/bin/pgwriter "$O/acked.txt" {WPS} /run/db-endpoint 1 shop &
wp=$!
sleep 5

sync; echo 3 >/proc/sys/vm/drop_caches
phase copy-start
dbhost apply --profile {P}/bench-copy.toml --yes --output json >"$O/copy.out" 2>"$O/copy.err"; echo $? >"$O/copy.rc"
phase copy-end
check "two-pass apply exited 0" test "$(cat $O/copy.rc)" = 0
check "on /datadrive/copy" test "$(psql_ -c 'SHOW data_directory')" = /datadrive/copy
sleep 5

sync; echo 3 >/proc/sys/vm/drop_caches
phase replica-start
dbhost apply --profile {P}/bench-replica.toml --yes --output json >"$O/replica.out" 2>"$O/replica.err"; echo $? >"$O/replica.rc"
phase replica-end
check "replica apply exited 0" test "$(cat $O/replica.rc)" = 0
check "on /datadrive2/replica" test "$(psql_ -c 'SHOW data_directory')" = /datadrive2/replica
sleep 5

sync; echo 3 >/proc/sys/vm/drop_caches
phase naive-start
a=$(date +%s.%N); systemctl stop postgresql@15-main
b=$(date +%s.%N); cp -a /datadrive2/replica /datadrive/naive
c=$(date +%s.%N)
sed -i "s|^data_directory = .*|data_directory = '/datadrive/naive'|" /etc/postgresql/15/main/postgresql.conf
systemctl start postgresql@15-main
d=$(date +%s.%N)
phase naive-end
echo "naive_stop=$a naive_copy=$b naive_start=$c naive_up=$d" >>"$O/timing.txt"
check "on /datadrive/naive" test "$(psql_ -c 'SHOW data_directory')" = /datadrive/naive
sleep 5
kill -TERM $wp; wait $wp
psql_ -d shop -c "SELECT id FROM w ORDER BY id" >"$O/present.txt"
psql_ -d shop -c "SELECT count(*) || ' ' || md5(string_agg(md5(b), '' ORDER BY id)) FROM blob" >"$O/sum-after.txt"
check "the static table is unchanged" cmp "$O/sum-before.txt" "$O/sum-after.txt"
"""


def check(run, out):
    acks = no_acked_row_lost(run, [out / "acked.txt"], out / "present.txt", "bench-cutover")
    ph = dict(line.split() for line in read_text(out / "phases.txt").splitlines())
    times = sorted(acks.values())
    gap = {}
    for m in ("copy", "replica", "naive"):
        gap[m] = max_gap(times, float(ph[f"{m}-start"]), float(ph[f"{m}-end"]))[0]
    timing = dict(kv.split("=", 1) for kv in read_text(out / "timing.txt").split())
    du = int(read_text(out / "du.txt").split()[0])
    steady = sorted(b - a for a, b in zip(times, times[1:]))
    median = steady[len(steady) // 2]

    def steps(name):
        fin = {e["step"]: e for e in events(out / name) if e.get("event") == "finished"}
        return {s: round(fin[s]["seconds"], 2) for s in fin if s.startswith("db.")}

    sc, sr = steps("copy.out"), steps("replica.out")
    copy_s = float(timing["naive_start"]) - float(timing["naive_copy"])
    row = {"datadir_mib": round(du / 2**20), "mb": MB, "wps": WPS, "acked": len(acks),
           "median_interval_s": round(median, 3), "replica_s": round(gap["replica"], 2),
           "two_pass_s": round(gap["copy"], 2), "naive_s": round(gap["naive"], 2),
           "naive_cp_s": round(copy_s, 2), "load_s": timing.get("load_s"),
           "replica_steps": sr, "two_pass_steps": sc}
    lines = [
        f"bench-cutover: PostgreSQL datadir {row['datadir_mib']} MiB, writer {WPS:g} commits/s "
        f"({len(acks)} acknowledged, none lost; median interval {median * 1000:.0f} ms)",
        f"  downtime (longest gap between acknowledged commits):",
        f"    dbhost replica cutover  {gap['replica']:7.2f} s   steps {sr}",
        f"    dbhost two-pass copy    {gap['copy']:7.2f} s   steps {sc}",
        f"    naive stop/cp/start     {gap['naive']:7.2f} s   (cp -a {copy_s:.2f} s)",
        f"    replica / naive = {gap['replica'] / gap['naive']:.3f}, two-pass / naive = "
        f"{gap['copy'] / gap['naive']:.3f}",
    ]
    table = "\n".join(lines)
    (run.dir / "ratios.txt").write_text(table + "\n")
    with open(run.dir.parent / "bench-cutover-results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    run.timings["figures"] = {k: row[k] for k in ("datadir_mib", "replica_s", "two_pass_s", "naive_s")}
    log(table)
    expect(gap["naive"] > 0 and gap["replica"] > 0, "no gap measured")


SCENARIO = Scenario(
    name="bench-cutover",
    description=f"downtime of a PostgreSQL move under load: dbhost replica cutover vs two-pass copy vs naive ({MB} MiB)",
    disks=[
        Disk("d1a", size=DISK1, bus="scsi", lun=0, serial="data1-a"),
        Disk("d1b", size=DISK1, bus="scsi", lun=1, serial="data1-b"),
        Disk("d2a", size=DISK2, bus="scsi", lun=2, serial="data2-a"),
        Disk("d2b", size=DISK2, bus="scsi", lun=3, serial="data2-b"),
    ],
    mask=["mariadb.service"],
    profiles=PROFILES,
    suite=False,
    steps=[Boot(job=JOB, check=check, timeout=3600)],
)
