"""migrate-mariadb: `dbhost migrate` imports a live MariaDB from its old host under a write load.

One boot, no cloud-init. The old host is a second MariaDB 10.11 in the guest (maria-old.service,
127.0.0.2:3306, datadir /var/lib/mysql-old on the OS disk); the new one is Debian's
mariadb.service with its binary log on, put on a 2-disk RAID-0 by `dbhost apply` under a write
load — through a replica (mariabackup, GTID, read-only before the stop): no acknowledged row
lost, the replica and its account gone afterwards. Then:
  * the source without binary logs: `migrate plan` exits 3, says a replica cannot catch up,
    what enabling them costs (one restart of the source) and offers the file-copy path with its
    estimated downtime; the job enables them (log_bin, restart) and plan passes;
  * a writer (dbwriter, the application's account `app` — no READ_ONLY ADMIN — over the unix
    socket named in an endpoint file) commits 20 rows/s
    into bench.w; `migrate start` streams mariabackup into /datadrive/mysql, prepares it and
    starts it as a replica from the backup's GTID (its own server_id, read_only);
  * `migrate cutover` (fence = stop: read_only + sessions ended, @@gtid_binlog_pos read, then
    maria-old stopped and masked; MASTER_GTID_WAIT; STOP SLAVE, RESET SLAVE ALL, read_only=0);
    the hook rewrites the writer's endpoint file.
Proves: exactly one server accepts writes (maria-old inactive and masked; the new one writable,
no replica configuration, on /datadrive/mysql on md), every acknowledged row is there, the
static tables' checksums equal the source's, finalize succeeds; prints the longest gap between
acknowledged commits and dbhost's own figure.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _migrate import (MARIA_NEW_SOCK, MARIA_OLD_SOCK, max_gap, maria_old_setup, maria_tools,  # noqa: E402
                      migrate_profile, no_acked_row_lost, writer_tools)
from harness import Boot, Disk, Scenario, expect, log, read_text  # noqa: E402

ROWS = int(os.environ.get("DBHOST_MIGRATE_ROWS", "20000"))
P = "/usr/local/share/dbhost/profiles"
GOOD = f"""source-user = "dbhost"
replication-user = "repl"
password-file = "/root/src.pw"
replication-password-file = "/root/repl.pw"
fence = "stop"
source-unit = "maria-old.service"
source-defaults-file = "/etc/mysql-old/my.cnf"
on-cutover = ["/usr/local/bin/point-clients", "{MARIA_NEW_SOCK}"]
server-id = 2
"""
PROFILES = {"migrate-maria.toml": migrate_profile("migrate-mariadb", "mariadb", GOOD)}

HOOK = """#!/bin/bash
# The clients follow the database: what a DNS or load-balancer change does for real clients.
echo "$1" >/run/db-endpoint.new && mv /run/db-endpoint.new /run/db-endpoint
date +%s.%N >/run/vmtest/out/hook-ran
echo "pointed clients at $1"
"""

JOB = f"""
O=$VMTEST_OUT
run() {{ local n=$1; shift; dbhost "$@" >"$O/$n.out" 2>"$O/$n.err"; echo $? >"$O/$n.rc"; }}
phase() {{ echo "$1 $(date +%s.%N)" >>"$O/phases.txt"; }}
newsql() {{ mariadb -S {MARIA_NEW_SOCK} -N -B "$@"; }}
{writer_tools()}
{maria_tools()}
cat >/usr/local/bin/point-clients <<'EOF_HOOK'
{HOOK}EOF_HOOK
chmod 755 /usr/local/bin/point-clients
{maria_old_setup(ROWS, log_bin=False)}

# --- the new host: its own MariaDB with a binary log moves onto the array through a replica,
# under a write load (apply's local relocation)
# The guest image has no /var/log/mysql (its /var/log is bare): the binlog's directory first.
install -d -o mysql -g adm -m 2750 /var/log/mysql
printf '[mysqld]\nlog_bin = /var/log/mysql/mysql-bin\nserver_id = 1\n' >/etc/mysql/mariadb.conf.d/70-binlog.cnf
systemctl start mariadb
newsql -e "CREATE DATABASE bench; CREATE TABLE bench.w (id BIGINT PRIMARY KEY, t DOUBLE, pad VARCHAR(100)) ENGINE=InnoDB; \
  CREATE USER 'app'@'localhost'; GRANT SELECT, INSERT ON bench.* TO 'app'@'localhost'"
echo {MARIA_NEW_SOCK} >/run/db-endpoint-local
DBW_USER=app /usr/local/bin/dbwriter "$O/acked-local.txt" 20 1 @/run/db-endpoint-local &
lw=$!
sleep 2
echo "apply-start $(date +%s.%N)" >>"$O/phases.txt"
run apply apply --profile {P}/migrate-maria.toml --yes --output json
echo "apply-end $(date +%s.%N)" >>"$O/phases.txt"
check "apply exited 0" test "$(cat $O/apply.rc)" = 0
sleep 3
kill -TERM $lw; wait $lw
newsql -e "SELECT id FROM bench.w ORDER BY id" >"$O/present-local.txt"
check "apply moved MariaDB through a replica" grep -q '"event":"finished","step":"db.catch-up"' "$O/apply.out"
check "the relocation's replica is gone" sh -c '! systemctl is-active dbhost-replica.service'
check "the relocation's account is gone" test -z "$(newsql -e "SELECT user FROM mysql.user WHERE user = 'dbhost_relocate'")"
check "the server is writable after the move" test "$(newsql -e 'SELECT @@read_only')" = 0
newsql -e "DROP DATABASE bench; DROP USER 'app'@'localhost'"

# --- no binary log on the source: plan says so, the cost, and the file-copy path
run nobinlog migrate plan --profile {P}/migrate-maria.toml
check "no binlog: exit 3" test "$(cat $O/nobinlog.rc)" = 3
check "no binlog: says a replica cannot catch up" grep -q "binary logging is off" "$O/nobinlog.out"
check "no binlog: the cost of enabling it" grep -q "one restart of the source" "$O/nobinlog.out"
check "no binlog: the file-copy path and its downtime" grep -q "file-copy path.*s at 100 MiB/s" "$O/nobinlog.out"
echo "log_bin = /var/lib/mysql-old/binlog" >>/etc/mysql-old/my.cnf
systemctl restart maria-old.service
run plan migrate plan --profile {P}/migrate-maria.toml --output json
check "with binary logs the plan passes" test "$(cat $O/plan.rc)" = 0

# --- the writer on the source, then start
/usr/local/bin/mysum {MARIA_OLD_SOCK} >"$O/sum-source.txt"
echo {MARIA_OLD_SOCK} >/run/db-endpoint
DBW_USER=app /usr/local/bin/dbwriter "$O/acked.txt" 20 1 @/run/db-endpoint &
wp=$!
sleep 2
run start migrate start --profile {P}/migrate-maria.toml --yes --output json
check "migrate start exited 0" test "$(cat $O/start.rc)" = 0
run status1 migrate status --profile {P}/migrate-maria.toml --output json
check "status: replicating, exit 0" test "$(cat $O/status1.rc)" = 0
check "the copy is a read-only replica" test "$(newsql -e 'SELECT @@read_only')" = 1
check "the copy has its own server_id" test "$(newsql -e 'SELECT @@server_id')" = 2
sleep 3

# --- cutover
phase cutover-start
run cutover migrate cutover --profile {P}/migrate-maria.toml --yes --output json
phase cutover-end
check "cutover exited 0" test "$(cat $O/cutover.rc)" = 0
check "the hook ran" test -s "$O/hook-ran"
sleep 4
kill -TERM $wp; wait $wp
check "the old server is stopped" sh -c '! systemctl is-active maria-old.service'
check "the old server is masked" test "$(systemctl is-enabled maria-old.service)" = masked
check "the new server is writable" test "$(newsql -e 'SELECT @@read_only')" = 0
check "the new server replicates no more" test -z "$(newsql -e 'SHOW SLAVE STATUS')"
check "the new server takes writes" newsql -e "INSERT INTO bench.w VALUES (-2, 0, 'probe')"
check "datadir is /datadrive/mysql" test "$(newsql -e 'SELECT @@datadir')" = /datadrive/mysql/
check "on the md array" sh -c 'findmnt -no SOURCE -T /datadrive/mysql | grep -q "^/dev/md"'
/usr/local/bin/mysum {MARIA_NEW_SOCK} >"$O/sum-new.txt"
check "static tables identical" cmp "$O/sum-source.txt" "$O/sum-new.txt"
newsql -e "SELECT id FROM bench.w WHERE id > 0 ORDER BY id" >"$O/present.txt"
run finalize migrate finalize --profile {P}/migrate-maria.toml --yes
check "finalize exited 0" test "$(cat $O/finalize.rc)" = 0
cp /var/lib/dbhost/migrate.json "$O/migrate.json"
cp /var/lib/mysql-old/error.log "$O/old-error.log" 2>/dev/null || true
"""


def check(run, out):
    local = no_acked_row_lost(run, [out / "acked-local.txt"], out / "present-local.txt",
                              "migrate-mariadb (apply's relocation)")
    acks = no_acked_row_lost(run, [out / "acked.txt"], out / "present.txt", "migrate-mariadb")
    ph = {}
    for line in read_text(out / "phases.txt").splitlines():
        k, v = line.split()
        ph[k] = float(v)
    gap, _ = max_gap(sorted(acks.values()), ph["cutover-start"], ph["cutover-end"] + 5)
    lgap, _ = max_gap(sorted(local.values()), ph["apply-start"], ph["apply-end"])
    log(f"    migrate-mariadb: apply's relocation through a replica: longest gap {lgap:.2f} s")
    st = json.loads(read_text(out / "migrate.json"))
    expect(st["phase"] == "finalized", f"phase {st['phase']}")
    dbhost_ms = st["cutover"]["downtime_ms"]
    log(f"    migrate-mariadb: longest gap between acknowledged commits around the cutover "
        f"{gap:.2f} s (dbhost: fence to writable {dbhost_ms} ms)")
    run.timings["figures"] = {"gap_s": round(gap, 2), "dbhost_downtime_ms": dbhost_ms,
                              "relocation_gap_s": round(lgap, 2),
                              "acked": len(acks), "rows": ROWS}


SCENARIO = Scenario(
    name="migrate-mariadb",
    # By name until it passes on main: merged on 2026-12-05 without a run after the merge (the
    # branch's last runs: see vm-tests/README.md); the suite's two clean-clone proofs ran without it.
    suite=False,
    description="migrate: a live MariaDB from its old host (127.0.0.2) under a write load; no binlog refused with its cost; mariabackup + GTID replica; cutover",
    disks=[
        Disk("lun0", size="1G", bus="scsi", lun=0, serial="data-lun0"),
        Disk("lun1", size="1G", bus="scsi", lun=1, serial="data-lun1"),
    ],
    mask=["postgresql.service"],
    profiles=PROFILES,
    steps=[Boot(job=JOB, check=check, timeout=1500)],
)
