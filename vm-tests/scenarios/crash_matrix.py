"""crash-matrix: dbhost apply killed (SIGKILL) at every step boundary and at points inside the
copy passes, and the VM powered off hard at three points, while a client keeps writing rows;
re-running apply always converges and not one acknowledged row is lost.

Two blank no-cache virtio-scsi disks (LUN 0/1), MariaDB with DBHOST_CRASH_MB (default 16) MiB of
generated data (InnoDB + MyISAM + Aria, dbload of _mariadb.py) and a writer that inserts rows with
increasing ids into live.w all the time (each id the server acknowledged goes to
out-N/acked.txt, on the harness's share, so a power cut cannot lose the record). The faults come
from dbhost's test-only seam (agent/src/apply/fault.rs): DBHOST_FAULT=kill@STEP:after makes apply
SIGKILL itself once STEP is journaled, so one run per step walks the plan one step at a time;
kill@copy:pass1|pass2:N after the N-th file of a copy pass; pause@POINT blocks there and the
job's `mark` makes the harness cut the power (QMP quit).

No cloud-init (no seed, so the harness masks it; nothing here needs it). 4 boots:
  1. load, checksum, writer; kill at db.room:before and after db.room, self.install;
     power cut right after md.array (the array exists, its boot unit does not yet).
  2. (array assembled by adoption) kills after md.array .. tune .. db.preflight, twice inside pass 1
     (one before its first manifest checkpoint); power cut in the middle of pass 1.
  3. (MariaDB back on the old datadir) kills after pass 1, verify-pass1, inside pass 2, after
     stop, pass2, verify-delta; power cut right after db.switch-config (before keep-old/start).
  4. (MariaDB starts at boot on the new datadir) kills after keep-old, start, health; a
     clean apply exits 0, a second changes nothing; MariaDB serves /datadrive/mysql from /dev/md*,
     CHECKSUM TABLE of the static tables identical; the host checks every acknowledged id of
     every boot is in live.w.
The copy kill points are drawn from DBHOST_CRASH_SEED (printed; random when unset).
"""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import DBSUM, LOAD, summary  # noqa: E402
from harness import Boot, Delay, Disk, PowerOff, Scenario, expect, log, read_text  # noqa: E402


PROFILE = "/usr/local/share/dbhost/profiles/qemu-dev.toml"
MB = int(os.environ.get("DBHOST_CRASH_MB", "16"))
ROWS = max(1000, MB * 1024 * 1024 // 300)
SEED = int(os.environ.get("DBHOST_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
_r = random.Random(SEED)
# Inside pass 1: one kill before its first checkpoint (5 s), one later, then the power cut.
# A fresh MariaDB datadir has a few hundred files, so every N is reached.
P1_EARLY = _r.randint(1, 3)
P1_LATE = _r.randint(20, 60)
P1_CUT = _r.randint(10, 40)
P2_KILL = 1  # pass 2 copies only what changed during the run that stopped the server

# The static tables only: live.w is the writer's, it changes all the time.
SUM = DBSUM.replace("'sys')", "'sys','live')")
assert SUM != DBSUM

PRELUDE = f"""
PROFILE={PROFILE}
mkdir -p /var/lib/crash
apply_n=0
# kill_at POINT: `dbhost apply` with DBHOST_FAULT=kill@POINT must die by SIGKILL (rc 137).
kill_at() {{
  apply_n=$((apply_n + 1))
  local o="$VMTEST_OUT/kill-$apply_n"
  DBHOST_FAULT="kill@$1" dbhost apply --profile "$PROFILE" --yes --output json >"$o.out" 2>"$o.err"
  local rc=$?
  echo "$1 rc=$rc" | tee -a "$VMTEST_OUT/kills.txt"
  check "apply killed at $1 (rc 137)" test "$rc" = 137
  [ "$rc" = 137 ] || {{ tail -5 "$o.err"; }}
}}
# pause_at POINT MARK: apply stops at POINT; tell the harness to cut the power there.
pause_at() {{
  rm -f /run/dbhost-paused
  DBHOST_FAULT="pause@$1" DBHOST_FAULT_MARK=/run/dbhost-paused \\
    dbhost apply --profile "$PROFILE" --yes --output json >"$VMTEST_OUT/pause.out" 2>"$VMTEST_OUT/pause.err" &
  local pid=$!
  until [ -e /run/dbhost-paused ] || ! kill -0 $pid 2>/dev/null; do sleep 0.5; done
  if [ -e /run/dbhost-paused ]; then
    cp /var/lib/dbhost/journal.json "$VMTEST_OUT/journal-at-cut.json" 2>/dev/null
    echo "paused at $1; power cut $2"
    mark "$2"
    sleep 3600
  fi
  wait $pid; echo "apply exited $? instead of pausing at $1"
  check "apply paused at $1" false
  exit 1
}}
# The writer: ids BOOT*10^7+i into live.w; each id the server acknowledged goes to acked.txt.
start_writer() {{
  rm -f /run/crash-writer.stop
  ( i=0; base=$((VMTEST_BOOT * 10000000))
    while [ ! -e /run/crash-writer.stop ]; do
      i=$((i + 1))
      if mysql --connect-timeout=2 -e "INSERT INTO live.w (id, pad) VALUES ($((base + i)), REPEAT('w', 64))" 2>/dev/null; then
        echo $((base + i)) >>"$VMTEST_OUT/acked.txt"
      else
        sleep 0.3
      fi
    done ) >/dev/null 2>&1 &
  WRITER=$!
}}
stop_writer() {{ touch /run/crash-writer.stop; wait $WRITER; }}
snapshot() {{ dbhost status >"$VMTEST_OUT/status-$1.txt" 2>&1; cat /proc/mdstat >"$VMTEST_OUT/mdstat-$1.txt"; findmnt >"$VMTEST_OUT/findmnt-$1.txt"; }}
"""

JOB1 = PRELUDE + f"""
echo "seed={SEED} p1_early={P1_EARLY} p1_late={P1_LATE} p1_cut={P1_CUT} rows={ROWS}" | tee "$VMTEST_OUT/points.txt"
cat >/usr/local/bin/dbsum <<'DBSUM_EOF'
{SUM}DBSUM_EOF
cat >/usr/local/bin/dbload <<'DBLOAD_EOF'
{LOAD}DBLOAD_EOF
chmod 0755 /usr/local/bin/dbsum /usr/local/bin/dbload
systemctl start mariadb
check "MariaDB active" systemctl is-active mariadb
t0=$(date +%s)
/usr/local/bin/dbload {ROWS} >"$VMTEST_OUT/load.log" 2>&1
check "data loaded" test "$(mysql -Nse 'SELECT COUNT(*) FROM shop.orders')" = {ROWS}
echo "load_s=$(( $(date +%s) - t0 ))" >"$VMTEST_OUT/timing.txt"
mysql -e "CREATE DATABASE live; CREATE TABLE live.w (id BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6), pad VARCHAR(100)) ENGINE=InnoDB"
mysql -e "FLUSH TABLES"
/usr/local/bin/dbsum >/var/lib/crash/sum-before.txt 2>&1
cp /var/lib/crash/sum-before.txt "$VMTEST_OUT/sum-before.txt"
sync
start_writer
kill_at db.room:before
for s in db.room self.install; do kill_at $s:after; done
snapshot 1
pause_at md.array:after poweroff-1
"""

JOB2 = PRELUDE + f"""
snapshot 2
start_writer
check "md array not assembled after the cut (no boot unit yet)" sh -c '! grep -q "^md" /proc/mdstat'
for s in md.array md.boot-unit fs.mkfs fs.lockdown fs.fstab fs.mount tune db.preflight; do kill_at $s:after; done
check "array runs after md.array" grep -q "active raid0" /proc/mdstat
kill_at copy:pass1:{P1_EARLY}
kill_at copy:pass1:{P1_LATE}
pause_at copy:pass1:{P1_CUT} poweroff-2
"""

JOB3 = PRELUDE + f"""
snapshot 3
check "array assembled at boot" grep -q "active raid0" /proc/mdstat
# The mount is nofail (not ordered before local-fs.target) and nothing here requires it yet:
# MariaDB still runs from the OS disk. Wait for it, bounded, rather than race the boot.
check "/datadrive mounted from md" wait_until 120 sh -c 'findmnt -no SOURCE /datadrive | grep -q "^/dev/md"'
wait_until 180 systemctl is-active mariadb
check "MariaDB back on the old datadir after the cut" test "$(mysql -Nse 'SELECT @@datadir')" = /var/lib/mysql/
start_writer
for s in db.pass1 db.verify-pass1; do kill_at $s:after; done
kill_at copy:pass2:{P2_KILL}
for s in db.stop db.pass2 db.verify-delta; do kill_at $s:after; done
pause_at db.switch-config:after poweroff-3
"""

JOB4 = PRELUDE + f"""
snapshot 4
wait_until 180 systemctl is-active mariadb
check "MariaDB started at boot on the new datadir" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql/
start_writer
for s in db.keep-old db.start db.health; do kill_at $s:after; done
dbhost apply --profile "$PROFILE" --yes --output json >"$VMTEST_OUT/clean1.out" 2>"$VMTEST_OUT/clean1.err"; echo $? >"$VMTEST_OUT/clean1.rc"
check "clean apply exited 0" test "$(cat $VMTEST_OUT/clean1.rc)" = 0
dbhost apply --profile "$PROFILE" --yes --output json >"$VMTEST_OUT/clean2.out" 2>"$VMTEST_OUT/clean2.err"; echo $? >"$VMTEST_OUT/clean2.rc"
check "second apply exited 0" test "$(cat $VMTEST_OUT/clean2.rc)" = 0
sleep 2
stop_writer
check "MariaDB is active" systemctl is-active mariadb
check "datadir is /datadrive/mysql" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql/
check "/datadrive is on the md array" sh -c 'findmnt -no SOURCE -T /datadrive/mysql | grep -q "^/dev/md"'
check "old datadir kept" sh -c 'ls -d /var/lib/mysql.dbhost-old-*'
/usr/local/bin/dbsum >"$VMTEST_OUT/sum-after.txt" 2>&1
check "CHECKSUM TABLE of the static tables identical" cmp /var/lib/crash/sum-before.txt "$VMTEST_OUT/sum-after.txt"
check "row count" test "$(mysql -Nse 'SELECT COUNT(*) FROM shop.orders')" = {ROWS}
mysql -Nse 'SELECT id FROM live.w ORDER BY id' >"$VMTEST_OUT/ids.txt"
check "writer ids dumped" test -s "$VMTEST_OUT/ids.txt"
cp /var/lib/dbhost/journal.json "$VMTEST_OUT/journal.json"
snapshot 4-end
"""


def check_final(run, out):
    expect(summary(out / "clean2.out")["changed"] == 0, f"second clean apply changed something: {read_text(out / 'clean2.out')[-1500:]}")
    present = set(read_text(out / "ids.txt").split())
    acked, lost = 0, []
    for n in range(1, run.boot_no + 1):
        p = run.out(n) / "acked.txt"
        if p.exists():
            ids = read_text(p).split()
            acked += len(ids)
            lost += [i for i in ids if i not in present]
            run.timings[f"acked-boot-{n}"] = len(ids)
    log(f"    crash-matrix: seed {SEED}; {acked} acknowledged rows, {len(present)} in live.w, {len(lost)} lost")
    run.timings["seed"] = SEED
    expect(acked > 0, "the writer got no row acknowledged")
    expect(not lost, f"{len(lost)} acknowledged rows lost, e.g. {lost[:20]}")
    run.timings["guest"] = read_text(run.out(1) / "timing.txt").strip()


def cut(name):
    return {name: [Delay(2), PowerOff()]}


SCENARIO = Scenario(
    name="crash-matrix",
    suite=True,  # passed in a guest: 644 s (4 boots)
    description=f"kill -9 apply at every step boundary and inside pass 1/2, 3 hard power cuts, a writer running: converges, no acknowledged row lost ({MB} MiB)",
    disks=[
        Disk("lun0", size="1G", bus="scsi", lun=0, serial="data-lun0"),
        Disk("lun1", size="1G", bus="scsi", lun=1, serial="data-lun1"),
    ],
    user_data=None,
    # From boot 3 on MariaDB runs with dbhost's tuning (the tune step precedes the relocation):
    # half the RAM for the buffer pool. 2 GiB leaves the job's tools room beside it.
    memory_mb=2048,
    mask=["postgresql.service"],
    steps=[
        Boot(job=JOB1, on_mark=cut("poweroff-1"), expect_job=False, timeout=1500),
        Boot(job=JOB2, on_mark=cut("poweroff-2"), expect_job=False, timeout=1200),
        Boot(job=JOB3, on_mark=cut("poweroff-3"), expect_job=False, timeout=1200),
        Boot(job=JOB4, check=check_final, timeout=1200),
    ],
)
