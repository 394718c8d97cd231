"""migrate-postgres: `dbhost migrate` imports a live PostgreSQL from its old host under a write
load and cuts over with seconds of downtime.

One boot, no cloud-init. The old host is a second PostgreSQL 15 in the guest (pg-old.service,
127.0.0.2:5433, datadir on the OS disk, database shop with DBHOST_MIGRATE_ROWS rows); the new one
is Debian's cluster 15/main, put on a 2-disk RAID-0 by `dbhost apply`. Then:
  * bad input, each with the reason and nothing changed: the source's pg_hba.conf without a
    replication line (exit 3 and the exact line: the job appends the printed line and reloads
    the source), a wrong replication password (exit 3, names the password file), an
    unreachable port (exit 3, names host and port); then plan passes;
  * a writer (pgwriter, peer auth over the unix socket) commits 20 rows/s into shop.w on the
    source; `migrate start` clones it (pg_basebackup, slot) and runs the copy as a standby;
  * replication broken on purpose (the role repl loses LOGIN, its walsender is ended): status
    exits 1 and says broken, cutover exits 3 and switches nothing (the copy still in recovery,
    the source still writable); LOGIN restored, streaming again;
  * `migrate cutover` (fence = stop: pg-old stopped and masked, the shutdown checkpoint read
    from its control file): the hook rewrites the writer's endpoint file; downtime reported.
Proves: exactly one server accepts writes afterwards (pg-old inactive and masked, the new one
out of recovery on /datadrive/postgresql on md), every acknowledged row is there, the static
tables' checksums equal the source's, finalize succeeds. Prints the longest gap between
acknowledged commits (the downtime a client saw) and dbhost's own figure.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _migrate import (PG_NEW_SOCK, PG_OLD, PG_OLD_SOCK, acked, max_gap, migrate_profile,  # noqa: E402
                      no_acked_row_lost, pg_old_setup, writer_tools)
from harness import Boot, Disk, Scenario, expect, log, read_text  # noqa: E402

ROWS = int(os.environ.get("DBHOST_MIGRATE_ROWS", "20000"))
P = "/usr/local/share/dbhost/profiles"
GOOD = """source-port = 5433
replication-user = "repl"
password-file = "/root/src.pw"
replication-password-file = "/root/repl.pw"
fence = "stop"
source-unit = "pg-old.service"
on-cutover = ["/usr/local/bin/point-clients", "/var/run/postgresql/.s.PGSQL.5432"]
catch-up-timeout = "60s"
"""
PROFILES = {
    "migrate-pg.toml": migrate_profile("migrate-postgres", "postgresql", GOOD),
    "migrate-pg-badpw.toml": migrate_profile(
        "migrate-postgres", "postgresql", GOOD.replace("/root/repl.pw", "/root/bad.pw")),
    "migrate-pg-unreach.toml": migrate_profile(
        "migrate-postgres", "postgresql", GOOD.replace("source-port = 5433", "source-port = 5999")),
}

HOOK = """#!/bin/bash
# The clients follow the database: what a DNS or load-balancer change does for real clients.
echo "$1" >/run/db-endpoint.new && mv /run/db-endpoint.new /run/db-endpoint
date +%s.%N >/run/vmtest/out/hook-ran
echo "pointed clients at $1 ($DBHOST_MIGRATE_ENGINE from $DBHOST_MIGRATE_SOURCE, downtime ${DBHOST_MIGRATE_DOWNTIME_MS} ms)"
"""

JOB = f"""
O=$VMTEST_OUT
D() {{ dbhost "$@"; }}
run() {{ local n=$1; shift; dbhost "$@" >"$O/$n.out" 2>"$O/$n.err"; echo $? >"$O/$n.rc"; }}
phase() {{ echo "$1 $(date +%s.%N)" >>"$O/phases.txt"; }}
newsql() {{ runuser -u postgres -- psql -X -q -A -t -h /var/run/postgresql -p 5432 "$@"; }}
{writer_tools()}
cat >/usr/local/bin/point-clients <<'EOF_HOOK'
{HOOK}EOF_HOOK
chmod 755 /usr/local/bin/point-clients
{pg_old_setup(ROWS)}
# the writer (root, as role postgres) is trusted on shop over the socket here too
sed -i '1i local shop postgres trust' /etc/postgresql/15/main/pg_hba.conf
systemctl start postgresql@15-main
run apply apply --profile {P}/migrate-pg.toml --yes --output json
check "apply exited 0" test "$(cat $O/apply.rc)" = 0
check "the new cluster is configured for the array" grep -q "^data_directory = '/datadrive/postgresql'" /etc/postgresql/15/main/postgresql.conf

# --- bad input: each refused with its reason, nothing changed
run hba migrate plan --profile {P}/migrate-pg.toml
check "no replication line in pg_hba.conf: exit 3" test "$(cat $O/hba.rc)" = 3
line=$(grep -o 'host    replication    repl    [0-9.]*/32    scram-sha-256' "$O/hba.out" | head -n1)
check "plan printed the exact pg_hba.conf line" test -n "$line"
echo "$line" >>{PG_OLD}/pg_hba.conf
systemctl reload pg-old.service
sleep 1
run badpw migrate plan --profile {P}/migrate-pg-badpw.toml
check "wrong password: exit 3" test "$(cat $O/badpw.rc)" = 3
check "wrong password: names the password and its file" grep -q "password authentication failed.*replication-password-file" "$O/badpw.out"
run unreach migrate plan --profile {P}/migrate-pg-unreach.toml
check "unreachable: exit 3" test "$(cat $O/unreach.rc)" = 3
check "unreachable: names host and port" grep -q "cannot reach the source 127.0.0.2:5999" "$O/unreach.out"
run plan migrate plan --profile {P}/migrate-pg.toml --output json
check "with that line the plan passes" test "$(cat $O/plan.rc)" = 0
check "nothing was changed by the refused plans" sh -c '! test -e /var/lib/dbhost/migrate.json'

# --- the writer on the source, then start
/usr/local/bin/pgsum -h /run/pg-old -p 5433 >"$O/sum-source.txt"
echo {PG_OLD_SOCK} >/run/db-endpoint
chmod 644 /run/db-endpoint
PGUSER=postgres /usr/local/bin/pgwriter "$O/acked.txt" 20 /run/db-endpoint 1 shop &
wp=$!
sleep 2
phase start
run start migrate start --profile {P}/migrate-pg.toml --yes --output json
check "migrate start exited 0" test "$(cat $O/start.rc)" = 0
run status1 migrate status --profile {P}/migrate-pg.toml --output json
check "status: streaming, exit 0" test "$(cat $O/status1.rc)" = 0
check "the copy is a standby" test "$(newsql -c 'SELECT pg_is_in_recovery()')" = t

# --- replication breaks: status shows it, cutover switches nothing
oldsql() {{ runuser -u postgres -- psql -X -q -A -t -h /run/pg-old -p 5433 "$@"; }}
oldsql -c "ALTER ROLE repl NOLOGIN"
oldsql -c "SELECT pg_terminate_backend(pid) FROM pg_stat_replication" >/dev/null
broken() {{ dbhost migrate status --profile {P}/migrate-pg.toml >"$O/status-broken.out" 2>&1; [ $? = 1 ]; }}
check "status exits 1 once replication is broken" wait_until 60 broken
check "status says it is broken" grep -q "BROKEN" "$O/status-broken.out"
run cutover-broken migrate cutover --profile {P}/migrate-pg.toml --yes
check "cutover refused while broken (exit 3)" test "$(cat $O/cutover-broken.rc)" = 3
check "nothing switched: the copy is still a standby" test "$(newsql -c 'SELECT pg_is_in_recovery()')" = t
check "nothing switched: the source still takes writes" oldsql -d shop -c "INSERT INTO w VALUES (-1, 0, 'probe')"
oldsql -c "ALTER ROLE repl LOGIN"
healthy() {{ dbhost migrate status --profile {P}/migrate-pg.toml >/dev/null 2>&1; }}
check "streaming again once the role may log in" wait_until 90 healthy
sleep 3

# --- cutover
phase cutover-start
run cutover migrate cutover --profile {P}/migrate-pg.toml --yes --output json
phase cutover-end
check "cutover exited 0" test "$(cat $O/cutover.rc)" = 0
check "the hook ran" test -s "$O/hook-ran"
sleep 4
kill -TERM $wp; wait $wp
check "the old server is stopped" sh -c '! systemctl is-active pg-old.service'
check "the old server is masked" test "$(systemctl is-enabled pg-old.service)" = masked
check "the new server is out of recovery" test "$(newsql -c 'SELECT pg_is_in_recovery()')" = f
check "the new server takes writes" newsql -d shop -c "INSERT INTO w VALUES (-2, 0, 'probe')"
check "data_directory is /datadrive/postgresql" test "$(newsql -c 'SHOW data_directory')" = /datadrive/postgresql
check "on the md array" sh -c 'findmnt -no SOURCE -T /datadrive/postgresql | grep -q "^/dev/md"'
check "no password left in the new server's settings" sh -c '! grep -q primary_conninfo /datadrive/postgresql/postgresql.auto.conf'
/usr/local/bin/pgsum -h /var/run/postgresql -p 5432 >"$O/sum-new.txt"
check "static tables identical" cmp "$O/sum-source.txt" "$O/sum-new.txt"
newsql -d shop -c "SELECT id FROM w WHERE id > 0 ORDER BY id" >"$O/present.txt"
run status2 migrate status --profile {P}/migrate-pg.toml --output json
run finalize migrate finalize --profile {P}/migrate-pg.toml --yes
check "finalize exited 0" test "$(cat $O/finalize.rc)" = 0
cp /var/lib/dbhost/migrate.json "$O/migrate.json"
cp {PG_OLD}/../*.log "$O/" 2>/dev/null || true
"""


def check(run, out):
    acks = no_acked_row_lost(run, [out / "acked.txt"], out / "present.txt", "migrate-postgres")
    ph = {}
    for line in read_text(out / "phases.txt").splitlines():
        k, v = line.split()
        ph[k] = float(v)
    times = sorted(acks.values())
    gap, at = max_gap(times, ph["cutover-start"], ph["cutover-end"] + 5)
    st = json.loads(read_text(out / "migrate.json"))
    dbhost_ms = st["cutover"]["downtime_ms"]
    hook = st["cutover"]["hook"]
    expect(hook and hook["ok"], f"hook: {hook}")
    expect(st["phase"] == "finalized", f"phase {st['phase']}")
    log(f"    migrate-postgres: longest gap between acknowledged commits around the cutover "
        f"{gap:.2f} s (dbhost: fence to writable {dbhost_ms} ms, hook {hook['seconds']:.2f} s)")
    run.timings["figures"] = {"gap_s": round(gap, 2), "dbhost_downtime_ms": dbhost_ms,
                              "acked": len(acks), "rows": ROWS}


SCENARIO = Scenario(
    name="migrate-postgres",
    # By name until it passes on main: merged on 2026-12-05 without a run after the merge (the
    # branch's last runs: see vm-tests/README.md); the suite's two clean-clone proofs ran without it.
    suite=False,
    description="migrate: a live PostgreSQL from its old host (127.0.0.2) under a write load; bad input refused; broken replication switches nothing; cutover by promotion",
    disks=[
        Disk("lun0", size="1G", bus="scsi", lun=0, serial="data-lun0"),
        Disk("lun1", size="1G", bus="scsi", lun=1, serial="data-lun1"),
    ],
    mask=["mariadb.service"],
    profiles=PROFILES,
    steps=[Boot(job=JOB, check=check, timeout=1500)],
)
