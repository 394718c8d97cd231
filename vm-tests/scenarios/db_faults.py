"""db-faults: disks that fail while `dbhost apply` moves a live MariaDB datadir, one fault after
another in one boot, a writer inserting rows all the time:

  1. an I/O error on a member (every write fails) in the middle of pass 1 of the copy;
  2. a member turning read-only (every write refused) in the middle of pass 1;
  3. an I/O error on a member (every read fails) while apply verifies pass 1's copy;
  4. the target filesystem filling up between pass 1 and pass 2 (pass 2 runs with the server
     stopped and must copy a table created meanwhile).

Each time: apply exits non-zero naming the step; MariaDB keeps serving from /var/lib/mysql (after
4 dbhost must have started it again on the old datadir); `dbhost status` shows the step failed
and nothing after it done; then the fault is removed and the next run goes on. The last run
converges, a second changes nothing, MariaDB serves /datadrive/mysql from the array with the
static tables' checksums unchanged, and every row the server acknowledged is there.

The members are served through nbdkit's error filter (harness Disk.fault): LUN 0 refuses writes
with EPERM, LUN 1 fails with EIO; the job turns them on at the exact point where apply holds
(DBHOST_FAULT=hold@POINT, agent/src/apply/fault.rs)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import DBSUM, LOAD, WRITER, acked_rows_lost, summary  # noqa: E402
from harness import Boot, Disk, Scenario, expect, log, read_text  # noqa: E402

PROFILE = "/usr/local/share/dbhost/profiles/qemu-dev.toml"
MB = int(os.environ.get("DBHOST_FAULTS_MB", "16"))
ROWS = max(1000, MB * 1024 * 1024 // 300)
SUM = DBSUM.replace("'sys')", "'sys','live')")  # live.w changes all the time

JOB = f"""
PROFILE={PROFILE}
cat >/usr/local/bin/dbsum <<'DBSUM_EOF'
{SUM}DBSUM_EOF
cat >/usr/local/bin/dbload <<'DBLOAD_EOF'
{LOAD}DBLOAD_EOF
chmod 0755 /usr/local/bin/dbsum /usr/local/bin/dbload
""" + WRITER + r"""
on_old_datadir() { systemctl is-active -q mariadb && test "$(mysql -Nse 'SELECT @@datadir')" = /var/lib/mysql/; }
# faulty_run NAME POINT [SERIAL MODE] [PREP]: apply held at POINT while PREP runs and the fault of
# SERIAL (write|read) is turned on; then released. It must fail at STEP; the fault is turned off.
faulty_run() {
  local name=$1 point=$2 serial=$3 mode=$4 prep=${5:-true} o="$VMTEST_OUT/$1" pid rc
  rm -f /run/db-faults.hold
  DBHOST_FAULT="hold@$point" DBHOST_FAULT_MARK=/run/db-faults.hold \
    dbhost apply --profile "$PROFILE" --yes >"$o.out" 2>"$o.err" &
  pid=$!
  check "$name: apply reached $point" held /run/db-faults.hold 900 $pid
  eval "$prep"
  [ -n "$serial" ] && fault_on "$serial" "$mode"
  rm -f /run/db-faults.hold
  wait $pid; rc=$?
  echo "$rc" >"$o.rc"
  [ -n "$serial" ] && fault_off "$serial"
  check "$name: apply failed" test "$rc" != 0
  dbhost --output json status >"$o.status.json" 2>&1
  check "$name: MariaDB serves from /var/lib/mysql" wait_until 60 on_old_datadir
}
systemctl start mariadb
check "MariaDB active" systemctl is-active mariadb
/usr/local/bin/dbload """ + str(ROWS) + r""" >"$VMTEST_OUT/load.log" 2>&1
mysql -e "CREATE DATABASE live; CREATE TABLE live.w (id BIGINT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6), pad VARCHAR(100)) ENGINE=InnoDB"
mysql -e "FLUSH TABLES"
/usr/local/bin/dbsum >/run/sum-before.txt 2>&1; cp /run/sum-before.txt "$VMTEST_OUT/sum-before.txt"
start_writer
faulty_run copy-eio copy:pass1:3 data-fb write
faulty_run copy-readonly copy:pass1:1 data-fa write
faulty_run verify-eio db.verify-pass1:before data-fb read
# 4: a table created after pass 1 (pass 2 must copy it) and the target filled to the last block
FILL='mysql -e "CREATE TABLE live.spill (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB; INSERT INTO live.spill SELECT seq, REPEAT(MD5(seq), 2048) FROM seq_1_to_64";
  fallocate -l $(df --output=avail -B1 /datadrive | tail -1) /datadrive/.filler;
  dd if=/dev/zero of=/datadrive/.filler2 bs=4k status=none 2>/dev/null; sync; df -h /datadrive >"$VMTEST_OUT/full-df.txt"'
faulty_run target-full db.stop:before "" "" "$FILL"
check "target-full: the filesystem was full" grep -q 100% "$VMTEST_OUT/full-df.txt"
rm -f /datadrive/.filler /datadrive/.filler2
dbhost apply --profile "$PROFILE" --yes --output json >"$VMTEST_OUT/final1.out" 2>"$VMTEST_OUT/final1.err"; echo $? >"$VMTEST_OUT/final1.rc"
check "re-run after the faults: exit 0" test "$(cat "$VMTEST_OUT/final1.rc")" = 0
dbhost apply --profile "$PROFILE" --yes --output json >"$VMTEST_OUT/final2.out" 2>"$VMTEST_OUT/final2.err"; echo $? >"$VMTEST_OUT/final2.rc"
check "second run: exit 0" test "$(cat "$VMTEST_OUT/final2.rc")" = 0
sleep 2
stop_writer
check "MariaDB active" systemctl is-active mariadb
check "datadir is /datadrive/mysql" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql/
check "/datadrive is on the md array" sh -c 'findmnt -no SOURCE -T /datadrive/mysql | grep -q "^/dev/md"'
/usr/local/bin/dbsum >"$VMTEST_OUT/sum-after.txt" 2>&1
check "CHECKSUM TABLE of the static tables identical" cmp /run/sum-before.txt "$VMTEST_OUT/sum-after.txt"
check "the table made between the passes is there" test "$(mysql -Nse 'SELECT COUNT(*) FROM live.spill')" = 64
mysql -Nse 'SELECT id FROM live.w ORDER BY id' >"$VMTEST_OUT/ids.txt"
cp /var/lib/dbhost/journal.json "$VMTEST_OUT/journal.json" 2>/dev/null
"""

RUNS = {"copy-eio": ("db.pass1", "data-fb"), "copy-readonly": ("db.pass1", "data-fa"),
        "verify-eio": ("db.verify-pass1", "data-fb"), "target-full": ("db.pass2", None)}


def check(run, out):
    for name, (step, serial) in RUNS.items():
        rc = int(read_text(out / f"{name}.rc").strip())
        text = read_text(out / f"{name}.out") + read_text(out / f"{name}.err")
        expect(rc != 0, f"{name}: apply exited 0 although the disk failed")
        expect(f"step {step}" in text, f"{name}: the error does not name step {step}: {text[-1500:]}")
        if name == "target-full":
            expect("No space left" in text or "ENOSPC" in text or "space" in text,
                   f"{name}: the error does not say the target is full: {text[-1500:]}")
        status = read_text(out / f"{name}.status.json")
        expect(step in status, f"{name}: dbhost status does not mention {step}: {status[-1500:]}")
    expect(summary(out / "final2.out")["changed"] == 0,
           f"second apply after the faults changed something: {read_text(out / 'final2.out')[-1500:]}")
    acked, _ = acked_rows_lost(run, out / "ids.txt")
    log(f"    db-faults: {acked} acknowledged rows, none lost")


SCENARIO = Scenario(
    # By name until it passes: on main after the merge (2026-12-05) copy-eio and copy-readonly
    # held, but verify-eio never reached db.verify-pass1: pass 1 itself failed with "syncfs
    # /datadrive/mysql: EIO" (the XFS on the array still carried the earlier run's write error),
    # and after target-full MariaDB was not serving from /var/lib/mysql. Bugs to fix in the
    # relocation's fault handling, not in the bed.
    suite=False,
    name="db-faults",
    description="a member fails (EIO), turns read-only (EPERM), fails reads during verify; the target fills up: "
                "apply stops naming the step, MariaDB keeps serving, re-runs converge, no acknowledged row lost",
    disks=[Disk("fa", size="1G", bus="scsi", lun=0, serial="data-fa", fault="EPERM"),
           Disk("fb", size="1G", bus="scsi", lun=1, serial="data-fb", fault="EIO")],
    user_data=None,
    memory_mb=2048,
    mask=["postgresql.service"],
    steps=[Boot(job=JOB, check=check, timeout=1800)],
)
