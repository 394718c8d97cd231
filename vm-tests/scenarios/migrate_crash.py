"""migrate-crash: `dbhost migrate cutover` killed (SIGKILL) at every step and the VM powered
off hard at two, while a writer commits all the time: afterwards exactly one server accepts
writes (never both; never neither once cutover was re-run), and no acknowledged row is lost.

The bed of migrate-postgres (pg-old.service on 127.0.0.2:5433 as the old host, Debian's cluster
on the array as the new one, fence = stop). The faults come from dbhost's test-only seam
(DBHOST_FAULT, agent/src/apply/fault.rs): migrate.<phase>:before|after fires around the journal
write of each cutover phase, so each run of cutover advances one step and dies. 3 boots:
  1. setup, apply, migrate start, writer; cutover killed before and after `fencing`, after
     `fenced` (the source stopped, its fence drop-in written: nobody writable, the copy still a
     standby); power cut right after `promoting` is journaled (before the promotion itself).
  2. at boot the old server stays down (its fence drop-in) and the copy comes up still a
     standby; cutover
     killed after `promoted` (the new server writable, the source fenced: exactly one); power
     cut before `cut-over` (after the hook).
  3. at boot the new server comes up writable, the old one stays down; cutover re-run finishes
     (exit 0), finalize; every acknowledged id of every boot is in the new server.
Each check of "who accepts writes" tries a real INSERT on both servers.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _migrate import PG_OLD, PG_OLD_SOCK, migrate_profile, no_acked_row_lost, pg_old_setup, writer_tools  # noqa: E402
from harness import Boot, Delay, Disk, PowerOff, Scenario, expect, log, read_text  # noqa: E402

ROWS = int(os.environ.get("DBHOST_MIGRATE_ROWS", "5000"))
P = "/usr/local/share/dbhost/profiles/migrate-crash.toml"
PROFILE = migrate_profile("migrate-crash", "postgresql", """source-port = 5433
replication-user = "repl"
password-file = "/root/src.pw"
replication-password-file = "/root/repl.pw"
fence = "stop"
source-unit = "pg-old.service"
on-cutover = ["/usr/local/bin/point-clients", "/var/run/postgresql/.s.PGSQL.5432"]
""")

HOOK = """#!/bin/bash
# The clients follow the database; the endpoint survives a power cut (the next boot's writer).
echo "$1" >/run/db-endpoint.new && mv /run/db-endpoint.new /run/db-endpoint
mkdir -p /var/lib/crash && echo "$1" >/var/lib/crash/endpoint && sync
"""

PRELUDE = f"""
O=$VMTEST_OUT
n=0
# cut_kill POINT: cutover with DBHOST_FAULT=kill@POINT must die by SIGKILL (rc 137).
cut_kill() {{
  n=$((n + 1))
  DBHOST_FAULT="kill@$1" dbhost migrate cutover --profile {P} --yes --output json >"$O/kill-$n.out" 2>"$O/kill-$n.err"
  local rc=$?
  echo "$1 rc=$rc" | tee -a "$O/kills.txt"
  check "cutover killed at $1 (rc 137)" test "$rc" = 137
}}
# cut_pause POINT MARK: cutover stops at POINT; the harness cuts the power.
cut_pause() {{
  rm -f /run/dbhost-paused
  DBHOST_FAULT="pause@$1" DBHOST_FAULT_MARK=/run/dbhost-paused \\
    dbhost migrate cutover --profile {P} --yes --output json >"$O/pause.out" 2>"$O/pause.err" &
  local pid=$!
  until [ -e /run/dbhost-paused ] || ! kill -0 $pid 2>/dev/null; do sleep 0.2; done
  if [ -e /run/dbhost-paused ]; then
    cp /var/lib/dbhost/migrate.json "$O/migrate-at-cut.json"
    sync; echo "paused at $1; power cut $2"; mark "$2"; sleep 3600
  fi
  wait $pid; check "cutover paused at $1" false; exit 1
}}
# writable SOCKET_DIR PORT: a real INSERT succeeds there.
writable() {{ runuser -u postgres -- psql -X -q -h "$1" -p "$2" -d shop -c "INSERT INTO w VALUES (-$RANDOM$RANDOM, 0, 'probe')" >/dev/null 2>&1; }}
who() {{
  local a=no b=no
  writable /run/pg-old 5433 && a=yes
  writable /var/run/postgresql 5432 && b=yes
  echo "$1 old=$a new=$b" | tee -a "$O/who.txt"
  case "$2" in
    one) check "$1: exactly one server accepts writes" test "$a$b" = noyes ;;
    old) check "$1: only the old server accepts writes" test "$a$b" = yesno ;;
    none-or-one) check "$1: never both" test "$a$b" != yesyes ;;
  esac
}}
start_writer() {{
  mkdir -p /var/lib/crash
  if [ -s /var/lib/crash/endpoint ]; then cp /var/lib/crash/endpoint /run/db-endpoint; else echo {PG_OLD_SOCK} >/run/db-endpoint; fi
  PGUSER=postgres /usr/local/bin/pgwriter "$O/acked.txt" 20 /run/db-endpoint $((VMTEST_BOOT * 10000000)) shop &
}}
"""

JOB1 = PRELUDE + f"""
{writer_tools()}
cat >/usr/local/bin/point-clients <<'EOF_HOOK'
{HOOK}EOF_HOOK
chmod 755 /usr/local/bin/point-clients
{pg_old_setup(ROWS)}
echo "host replication repl 127.0.0.0/8 scram-sha-256" >>{PG_OLD}/pg_hba.conf
systemctl reload pg-old.service
sed -i '1i local shop postgres trust' /etc/postgresql/15/main/pg_hba.conf
systemctl start postgresql@15-main
dbhost apply --profile {P} --yes --output json >"$O/apply.out" 2>"$O/apply.err"; check "apply exited 0" test $? = 0
start_writer
sleep 2
dbhost migrate start --profile {P} --yes --output json >"$O/start.out" 2>"$O/start.err"; check "migrate start exited 0" test $? = 0
sleep 2
who "before the cutover" old
cut_kill migrate.fencing:before
who "killed before fencing" old
cut_kill migrate.fencing:after
cut_kill migrate.fenced:after
who "killed after fenced" none-or-one
check "the old server is stopped and fenced for the next boot" sh -c '! systemctl is-active pg-old.service && grep -q ConditionPathExists /etc/systemd/system/pg-old.service.d/zz-dbhost-fence.conf'
cut_pause migrate.promoting:after power-1
"""

JOB2 = PRELUDE + f"""
start_writer
wait_until 120 systemctl is-active postgresql@15-main
check "the old server stayed down through the power cut" sh -c '! systemctl is-active pg-old.service'
who "boot after the cut before the promotion" none-or-one
cut_kill migrate.promoted:after
who "killed after promoted" one
cut_pause migrate.cut-over:before power-2
"""

JOB3 = PRELUDE + f"""
start_writer
wait_until 120 systemctl is-active postgresql@15-main
who "boot after the cut after the promotion" one
dbhost migrate cutover --profile {P} --yes --output json >"$O/final.out" 2>"$O/final.err"; check "the re-run cutover finishes (exit 0)" test $? = 0
who "after the re-run" one
sleep 3
pkill -TERM -f pgwriter; sleep 1
dbhost migrate finalize --profile {P} --yes >"$O/finalize.out" 2>&1; check "finalize exited 0" test $? = 0
runuser -u postgres -- psql -X -q -A -t -d shop -c "SELECT id FROM w WHERE id > 0 ORDER BY id" >"$O/present.txt"
cp /var/lib/dbhost/migrate.json "$O/migrate.json"
"""


def check_final(run, out):
    files = [run.out(n) / "acked.txt" for n in range(1, run.boot_no + 1)]
    no_acked_row_lost(run, files, out / "present.txt", "migrate-crash")
    whos = "".join(read_text(run.out(n) / "who.txt") for n in range(1, run.boot_no + 1)
                   if (run.out(n) / "who.txt").exists())
    log("    migrate-crash: " + whos.strip().replace("\n", "; "))
    expect("old=yes new=yes" not in whos, f"two writable servers: {whos}")


def cut(name):
    return {name: [Delay(2), PowerOff()]}


SCENARIO = Scenario(
    name="migrate-crash",
    # By name until it passes on main: merged on 2026-12-05 without a run after the merge (the
    # branch's last runs: see vm-tests/README.md); the suite's two clean-clone proofs ran without it.
    suite=False,
    description="migrate cutover killed at every step and cut off twice under a write load: never two writable servers, one after a re-run, no acknowledged row lost",
    disks=[
        Disk("lun0", size="1G", bus="scsi", lun=0, serial="data-lun0"),
        Disk("lun1", size="1G", bus="scsi", lun=1, serial="data-lun1"),
    ],
    mask=["mariadb.service"],
    profiles={"migrate-crash.toml": PROFILE},
    steps=[
        Boot(job=JOB1, on_mark=cut("power-1"), expect_job=False, timeout=1500),
        Boot(job=JOB2, on_mark=cut("power-2"), expect_job=False, timeout=900),
        Boot(job=JOB3, check=check_final, timeout=900),
    ],
)
