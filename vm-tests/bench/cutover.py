"""bench-cutover: how long clients wait while PostgreSQL moves to new storage, four ways, under
a steady commit load, for one datadir size per run (DBHOST_BENCH_MB, default 256; the README's
table has 256, 1024 and 2048). Figures only: nothing about time is asserted; the run fails on a
failed command, a lost acknowledged row or a changed table.

One boot, no cloud-init. Four blank no-cache LUN disks make two arrays (data1*: /datadrive,
data2*: /datadrive2). The data starts on the "old host" of the migrate scenarios (pg-old.service,
127.0.0.2:5433, datadir on the OS disk): DBHOST_BENCH_MB MiB of incompressible rows (pgcrypto's
gen_random_bytes, stored out of line uncompressed). A client (pgwriter, the PostgreSQL protocol
over a unix socket named in an endpoint file the cutover hook rewrites) commits one row every
1/DBHOST_BENCH_WPS s (default 50/s) for the whole run and records every acknowledged id with its
time. The page cache is dropped before each move. Downtime = the longest gap between two
acknowledged commits while the move ran. The moves, each from where the previous one left it:
  1. migrate: `dbhost migrate start` + `cutover` (fence = stop, promotion in place) from the old
     host into Debian's cluster on /datadrive/postgresql (apply built array 1 first);
  2. two-pass copy: `dbhost apply` (database.method = "copy") → /datadrive2/copy;
  3. replica: `dbhost apply` (method auto: pg_basebackup, streaming replica, stop, catch-up,
     switch, start) → /datadrive/replica;
  4. naive: stop, `cp -a` /datadrive/replica → /datadrive2/naive, data_directory, start.
Host side: every acknowledged id is in the table at the end and the static table's md5 is
unchanged; the figures go to the log, runs/bench-cutover/ratios.txt and
runs/bench-cutover-results.jsonl (one line per run, so runs at several sizes make one table).
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scenarios"))
from _mariadb import events  # noqa: E402
from _migrate import PG_OLD, PG_OLD_SOCK, max_gap, no_acked_row_lost, pg_old_setup, writer_tools  # noqa: E402
from harness import Boot, Disk, Scenario, expect, log, read_text  # noqa: E402

MB = int(os.environ.get("DBHOST_BENCH_MB", "256"))
WPS = float(os.environ.get("DBHOST_BENCH_WPS", "50"))
ROWS = MB * 1024 * 1024 // 8192
DISK = f"{max(2, (MB * 2 + 1536) // 1024 // 2 + 1)}G"
NEW_SOCK = "/var/run/postgresql/.s.PGSQL.5432"


def profile(n: int, datadir: str, method: str, migrate: bool) -> str:
    mig = f"""
[migrate]
source-host = "127.0.0.2"
source-port = 5433
replication-user = "repl"
password-file = "/root/src.pw"
replication-password-file = "/root/repl.pw"
fence = "stop"
source-unit = "pg-old.service"
on-cutover = ["/usr/local/bin/point-clients", "{NEW_SOCK}"]
""" if migrate else ""
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
{mig}"""


PROFILES = {"bench-migrate.toml": profile(1, "postgresql", "auto", True),
            "bench-copy.toml": profile(2, "copy", "copy", False),
            "bench-replica.toml": profile(1, "replica", "auto", False)}
P = "/usr/local/share/dbhost/profiles"

HOOK = """#!/bin/bash
echo "$1" >/run/db-endpoint.new && mv /run/db-endpoint.new /run/db-endpoint
"""

JOB = f"""
O=$VMTEST_OUT
phase() {{ echo "$1 $(date +%s.%N)" >>"$O/phases.txt"; }}
newsql() {{ runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -h /var/run/postgresql -p 5432 "$@"; }}
move() {{ # NAME COMMAND...: a measured move, page cache dropped first
  sync; echo 3 >/proc/sys/vm/drop_caches
  phase $1-start
  "${{@:2}}" >"$O/$1.out" 2>"$O/$1.err"; echo $? >"$O/$1.rc"
  phase $1-end
  check "$1 exited 0" test "$(cat $O/$1.rc)" = 0
  sleep 5
}}
{writer_tools()}
cat >/usr/local/bin/point-clients <<'EOF_HOOK'
{HOOK}EOF_HOOK
chmod 755 /usr/local/bin/point-clients
{pg_old_setup(1000)}
echo "host replication repl 127.0.0.0/8 scram-sha-256" >>{PG_OLD}/pg_hba.conf
# The OS disk is 4 GiB: keep the WAL small beside a 2 GiB datadir.
oldsql -c "ALTER SYSTEM SET max_wal_size = '256MB'"
systemctl reload pg-old.service
t0=$(date +%s)
oldsql -d shop -c "CREATE EXTENSION pgcrypto; CREATE TABLE blob (id int PRIMARY KEY, b bytea); \\
  ALTER TABLE blob ALTER COLUMN b SET STORAGE EXTERNAL"
i=0
while [ $i -lt {ROWS} ]; do
  j=$((i + 8192)); [ $j -le {ROWS} ] || j={ROWS}
  oldsql -d shop -c "INSERT INTO blob SELECT g, gen_random_bytes(8000) FROM generate_series($((i + 1)), $j) g"
  i=$j
done
oldsql -c CHECKPOINT
echo "load_s=$(( $(date +%s) - t0 ))" >"$O/timing.txt"
df -m / >"$O/df.txt"
oldsql -d shop -c "SELECT count(*) || ' ' || md5(string_agg(md5(b), '' ORDER BY id)) FROM blob" >"$O/sum-before.txt"
du -sb {PG_OLD} >"$O/du.txt"
sed -i '1i local shop postgres trust' /etc/postgresql/15/main/pg_hba.conf
systemctl start postgresql@15-main
dbhost apply --profile {P}/bench-migrate.toml --yes --output json >"$O/apply.out" 2>"$O/apply.err"
check "apply (array 1, the new cluster) exited 0" test $? = 0
dbhost migrate start --profile {P}/bench-migrate.toml --yes --output json >"$O/start.out" 2>"$O/start.err"
check "migrate start exited 0" test $? = 0
echo {PG_OLD_SOCK} >/run/db-endpoint
PGUSER=postgres /usr/local/bin/pgwriter "$O/acked.txt" {WPS} /run/db-endpoint 1 shop &
wp=$!
sleep 5
move migrate dbhost migrate cutover --profile {P}/bench-migrate.toml --yes --output json
move copy dbhost apply --profile {P}/bench-copy.toml --yes --output json
check "on /datadrive2/copy" test "$(newsql -c 'SHOW data_directory')" = /datadrive2/copy
move replica dbhost apply --profile {P}/bench-replica.toml --yes --output json
check "on /datadrive/replica" test "$(newsql -c 'SHOW data_directory')" = /datadrive/replica
naive() {{
  systemctl stop postgresql@15-main
  b=$(date +%s.%N); cp -a /datadrive/replica /datadrive2/naive; c=$(date +%s.%N)
  echo "naive_cp_s=$(python3 -c "print(round($c - $b, 3))")" >>"$O/timing.txt"
  sed -i "s|^data_directory = .*|data_directory = '/datadrive2/naive'|" /etc/postgresql/15/main/postgresql.conf
  systemctl start postgresql@15-main
}}
move naive naive
check "on /datadrive2/naive" test "$(newsql -c 'SHOW data_directory')" = /datadrive2/naive
kill -TERM $wp; wait $wp
newsql -d shop -c "SELECT id FROM w ORDER BY id" >"$O/present.txt"
newsql -d shop -c "SELECT count(*) || ' ' || md5(string_agg(md5(b), '' ORDER BY id)) FROM blob" >"$O/sum-after.txt"
check "the static table is unchanged" cmp "$O/sum-before.txt" "$O/sum-after.txt"
"""

METHODS = ("migrate", "replica", "copy", "naive")


def check(run, out):
    acks = no_acked_row_lost(run, [out / "acked.txt"], out / "present.txt", "bench-cutover")
    ph = dict(line.split() for line in read_text(out / "phases.txt").splitlines())
    times = sorted(acks.values())
    gap = {m: max_gap(times, float(ph[f"{m}-start"]), float(ph[f"{m}-end"]))[0] for m in METHODS}
    timing = dict(kv.split("=", 1) for kv in read_text(out / "timing.txt").split())
    du = int(read_text(out / "du.txt").split()[0])
    steady = sorted(b - a for a, b in zip(times, times[1:]))
    median = steady[len(steady) // 2]

    def steps(name):
        fin = {e["step"]: e for e in events(out / name) if e.get("event") == "finished"}
        return {s: round(fin[s]["seconds"], 2) for s in fin if s.startswith("db.")}

    mig = [e for e in events(out / "migrate.out") if e.get("event") == "summary"]
    dbhost_ms = mig[0].get("downtime_ms") if mig else None
    row = {"datadir_mib": round(du / 2**20), "mb": MB, "wps": WPS, "acked": len(acks),
           "median_interval_s": round(median, 3), "load_s": timing.get("load_s"),
           "naive_cp_s": float(timing.get("naive_cp_s", "0")),
           "migrate_dbhost_ms": dbhost_ms, "replica_steps": steps("replica.out"),
           "copy_steps": steps("copy.out")}
    row.update({f"{m}_s": round(gap[m], 2) for m in METHODS})
    lines = [
        f"bench-cutover: PostgreSQL datadir {row['datadir_mib']} MiB, writer {WPS:g} commits/s "
        f"({len(acks)} acknowledged, none lost; median interval {median * 1000:.0f} ms)",
        "  downtime (longest gap between acknowledged commits):",
        f"    dbhost migrate cutover (promote in place) {gap['migrate']:7.2f} s   (dbhost: {dbhost_ms} ms fence to writable)",
        f"    dbhost apply, replica                     {gap['replica']:7.2f} s   steps {row['replica_steps']}",
        f"    dbhost apply, two-pass copy               {gap['copy']:7.2f} s   steps {row['copy_steps']}",
        f"    naive stop / cp -a / start                {gap['naive']:7.2f} s   (cp -a {row['naive_cp_s']} s)",
        "    / naive: " + ", ".join(f"{m} {gap[m] / gap['naive']:.3f}" for m in METHODS[:3]),
    ]
    table = "\n".join(lines)
    (run.dir / "ratios.txt").write_text(table + "\n")
    with open(run.dir.parent / "bench-cutover-results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    run.timings["figures"] = {k: row[k] for k in ("datadir_mib", "migrate_s", "replica_s", "copy_s", "naive_s")}
    log(table)
    expect(all(gap[m] > 0 for m in METHODS), f"no gap measured: {gap}")


SCENARIO = Scenario(
    name="bench-cutover",
    description=f"downtime of a PostgreSQL move under load: migrate cutover, apply replica, two-pass copy, naive ({MB} MiB)",
    disks=[
        Disk("d1a", size=DISK, bus="scsi", lun=0, serial="data1-a"),
        Disk("d1b", size=DISK, bus="scsi", lun=1, serial="data1-b"),
        Disk("d2a", size=DISK, bus="scsi", lun=2, serial="data2-a"),
        Disk("d2b", size=DISK, bus="scsi", lun=3, serial="data2-b"),
    ],
    mask=["mariadb.service"],
    profiles=PROFILES,
    suite=False,
    steps=[Boot(job=JOB, check=check, timeout=3600)],
)
