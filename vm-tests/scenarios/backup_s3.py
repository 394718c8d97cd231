"""backup-s3: the Roomsy nightly for PostgreSQL, to an S3-compatible server (moto), and a flipped
byte caught.

Boot 1: PostgreSQL 15 with two databases (`shop` from pgload, a small `app`) moved onto one data
disk by `apply`; a writer inserts rows while a logical backup (pg_dumpall --globals-only, then
pg_dump per database, two at a time) and a physical one (pg_basebackup) stream to moto;
`backup verify` restores each into a throwaway cluster (amcheck on every B-tree index, per-table
counts and checksums). Host: one bit of the physical backup's object is flipped in moto.
Boot 2, a new VM from the original image with blank disks: `apply`, then `backup verify` of the
corrupted backup fails naming the object with the expected and actual SHA-256; `restore` of it
is refused before a byte reaches the datadir (the server still answers); `restore
latest-verified` brings back the logical backup and proves the tables equal the fingerprint
verify recorded. Host: pgsum of the static tables equals boot 1's; the writer's table holds
between the rows it had when the backups began and when they ended."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _backup import RUN_TOKEN, profile, guestfwd, host_port, net_job, new_vm, secrets_job, servers, stdout_id, window  # noqa: E402
from _mariadb import files_job, rc, run_dbhost  # noqa: E402
from harness import Boot, Disk, Host, Scenario, expect, read_json, read_text  # noqa: E402
from postgres_move import PGLOAD, PGSUM  # noqa: E402

MB = int(os.environ.get("DBHOST_BACKUP_MB", "8"))
ROWS = max(1000, MB * 1024 * 1024 // 400)
DOCS = max(100, ROWS // 128)
NAME = "s3.backup.test"
BUCKET = "dbhost-ci"
PREFIX = f"pg-{RUN_TOKEN}"
PROFILE_NAME = "backup-s3.toml"
PROFILE = f"/usr/local/share/dbhost/profiles/{PROFILE_NAME}"

PROFILE_TOML = profile("vm-tests backup-s3: one data disk -> XFS at /datadrive -> PostgreSQL, backed up to an S3-compatible server", "pgdata", "postgresql", "postgresql", f"""[backup]
destination = "s3://{BUCKET}/{PREFIX}"
endpoint = "http://{NAME}:9000"
region = "us-east-1"
credentials-file = "/etc/dbhost/backup.env"
kind = "logical"
parallel = 2
""")

PSQL = "runuser -u postgres -- psql -X -A -t -q -v ON_ERROR_STOP=1"
SETUP = net_job(NAME) + secrets_job("'AWS_ACCESS_KEY_ID=testing' 'AWS_SECRET_ACCESS_KEY=testing'")

JOB1 = SETUP + files_job([{"path": "/usr/local/bin/pgsum", "permissions": "0755", "content": PGSUM},
                          {"path": "/usr/local/bin/pgload", "permissions": "0755", "content": PGLOAD}]) + f"""
cd /
systemctl start postgresql@15-main
/usr/local/bin/pgload {ROWS} {DOCS} >"$VMTEST_OUT/load.log" 2>&1
{PSQL} -d shop -c "CREATE SCHEMA load_w; CREATE TABLE load_w.writes (id int PRIMARY KEY, at timestamptz NOT NULL)"
runuser -u postgres -- createdb app
{PSQL} -d app -c "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 2000) i"
{run_dbhost(f"apply --profile {PROFILE} --yes --output json", "apply1")}
check "apply exited 0" test "$(cat $VMTEST_OUT/apply1.rc)" = 0
check "PostgreSQL serves /datadrive/postgresql" sh -c "{PSQL} -c 'SHOW data_directory' | grep -q '^/datadrive/postgresql'"

rm -f /run/stop-writer
( i=0; while [ ! -e /run/stop-writer ]; do i=$((i + 1)); {PSQL} -d shop -c "INSERT INTO load_w.writes VALUES ($i, now())" || break; done ) &
writer=$!
wait_until 60 test "$({PSQL} -d shop -c 'SELECT count(*) FROM load_w.writes')" -gt 5
c0=$({PSQL} -d shop -c 'SELECT count(*) FROM load_w.writes')
t0=$(date +%s%N)
{run_dbhost(f"backup --profile {PROFILE}", "backup-logical")}
t1=$(date +%s%N)
{run_dbhost(f"backup --profile {PROFILE} --kind physical", "backup-physical")}
t2=$(date +%s%N)
c1=$({PSQL} -d shop -c 'SELECT count(*) FROM load_w.writes')
touch /run/stop-writer; wait $writer
echo "$c0 $c1" >"$VMTEST_OUT/writes-window.txt"
echo "backup_logical_ms=$(( (t1 - t0) / 1000000 )) backup_physical_ms=$(( (t2 - t1) / 1000000 )) datadir_kb=$(du -sk /datadrive/postgresql | cut -f1)" >"$VMTEST_OUT/timing.txt"
check "logical backup under load exited 0" test "$(cat $VMTEST_OUT/backup-logical.rc)" = 0
check "physical backup under load exited 0" test "$(cat $VMTEST_OUT/backup-physical.rc)" = 0
check "the writer committed during the backups" test "$c1" -gt "$c0"
{run_dbhost(f"backup verify $(cat $VMTEST_OUT/backup-logical.out) --profile {PROFILE}", "verify-logical")}
{run_dbhost(f"backup verify $(cat $VMTEST_OUT/backup-physical.out) --profile {PROFILE}", "verify-physical")}
check "verify of the logical backup exited 0" test "$(cat $VMTEST_OUT/verify-logical.rc)" = 0
check "verify of the physical backup exited 0" test "$(cat $VMTEST_OUT/verify-physical.rc)" = 0
{run_dbhost(f"backup list --profile {PROFILE} --output json", "list")}
/usr/local/bin/pgsum >"$VMTEST_OUT/sum-source.txt" 2>&1
"""

JOB2 = SETUP + files_job([{"path": "/usr/local/bin/pgsum", "permissions": "0755", "content": PGSUM}]) + f"""
cd /
systemctl start postgresql@15-main
{run_dbhost(f"apply --profile {PROFILE} --yes --output json", "apply-new")}
check "apply on the new VM exited 0" test "$(cat $VMTEST_OUT/apply-new.rc)" = 0
{run_dbhost(f"backup verify $BAD --profile {PROFILE}", "verify-bad")}
{run_dbhost(f"restore $BAD --profile {PROFILE}", "restore-bad")}
check "the server still answers after the refused restore" sh -c "{PSQL} -c 'SELECT 1' | grep -q 1"
check "nothing was restored by the refused restore" test "$({PSQL} -c "SELECT count(*) FROM pg_database WHERE datname = 'shop'")" = 0
{run_dbhost(f"backup list --profile {PROFILE} --output json", "list")}
# A disk that fills up while restoring: a clear error, nothing left behind.
mkdir -p /mnt/tiny && mount -t tmpfs -o size=1m tmpfs /mnt/tiny
{run_dbhost(f"restore $GOOD --profile {PROFILE} --into /mnt/tiny/r", "restore-full")}
check "a restore into a full disk fails" test "$(cat $VMTEST_OUT/restore-full.rc)" != 0
check "and leaves nothing behind" test -z "$(ls -A /mnt/tiny)"
{run_dbhost(f"restore latest-verified --profile {PROFILE}", "restore")}
check "restore of the newest verified backup exited 0" test "$(cat $VMTEST_OUT/restore.rc)" = 0
/usr/local/bin/pgsum >"$VMTEST_OUT/sum-restored.txt" 2>&1
{PSQL} -d shop -c 'SELECT count(*) FROM load_w.writes' >"$VMTEST_OUT/writes-restored.txt"
{PSQL} -d app -c 'SELECT count(*) FROM t' >"$VMTEST_OUT/app-restored.txt"
"""


def flip(run):
    out = run.out(1)
    bad = stdout_id(out, "backup-physical")
    servers("flip", "s3", str(host_port("DBHOST_S3_PORT")), BUCKET, f"{PREFIX}/{bad}/base.tar.zst")
    run.bad = bad
    # The next job reads $job/bad and $job/good.
    (run.dir / "job" / "bad").write_text(bad + "\n")
    (run.dir / "job" / "good").write_text(stdout_id(out, "backup-logical") + "\n")


def check_first(run, out):
    listing = read_json(out / "list.out")["backups"]
    expect(len(listing) == 2 and all(b["complete"] and (b["verify"] or {}).get("ok") for b in listing),
           f"expected two complete, verified backups: {listing}")
    logical = stdout_id(out, "backup-logical")
    expect("-postgresql-logical-" in logical, f"logical id {logical}")
    run.timings["guest"] = dict(kv.split("=", 1) for kv in read_text(out / "timing.txt").split())


def check_new_vm(run, out):
    bad = run.bad
    expect(rc(out, "verify-bad") != 0, "verify of the corrupted backup passed")
    v = read_text(out / "verify-bad.out") + read_text(out / "verify-bad.err")
    expect(f"{bad}/base.tar.zst is corrupt" in v and "expected sha256" in v and ", got " in v,
           f"verify must name the object and both hashes: {v[-1500:]}")
    expect(rc(out, "restore-bad") != 0, "restore of the corrupted backup succeeded")
    r = read_text(out / "restore-bad.err")
    expect(f"{bad}/base.tar.zst is corrupt" in r and "the datadir was not touched" in r,
           f"the refused restore must name the object: {r[-1500:]}")
    listing = {b["id"]: b for b in read_json(out / "list.out")["backups"]}
    expect(listing[bad]["verify"] and not listing[bad]["verify"]["ok"], f"list must show the failed verify: {listing[bad]}")
    full = read_text(out / "restore-full.err")
    expect("No space left on device" in full, f"the full-disk restore must say so: {full[-800:]}")
    expect(rc(out, "restore") == 0, f"restore latest-verified: {read_text(out / 'restore.err')[-1500:]}")
    logical = stdout_id(run.out(1), "backup-logical")
    rest = read_text(out / "restore.err")
    expect(f"restoring {logical}" in rest and "tables equal the fingerprint" in rest,
           f"the restore must be of {logical} and proven: {rest[-1500:]}")
    src = read_text(run.out(1) / "sum-source.txt")
    got = read_text(out / "sum-restored.txt")
    expect(src.count("\n") >= 3 and src == got, f"table hashes differ:\n--- source\n{src}\n--- restored\n{got}")
    c0, c1 = window(run.out(1))
    n = int(read_text(out / "writes-restored.txt").strip())
    expect(c0 <= n <= c1, f"the writer's table has {n} rows; the backup ran while it had {c0}..{c1}")
    expect(read_text(out / "app-restored.txt").strip() == "2000", "database app not restored")


SCENARIO = Scenario(
    # By name until it passes on main: merged on 2026-12-05 without a run after the merge (the
    # branch's last runs: see vm-tests/README.md); the suite's two clean-clone proofs ran without it.
    suite=False,
    name="backup-s3",
    description=f"PostgreSQL ({MB} MiB) backed up to an S3-compatible server (moto) under a write load, logical and physical, verified; a flipped byte is caught by verify and restore; a new VM with blank disks restores the newest verified backup",
    disks=[Disk("lun0", size="2G", bus="scsi", lun=0, serial="data-lun0")],
    profiles={PROFILE_NAME: PROFILE_TOML},
    mask=["mariadb.service", "mariadb.socket"],
    guestfwd=guestfwd("DBHOST_S3_PORT", 9000),
    steps=[
        Host(lambda run: servers("container", "s3", str(host_port("DBHOST_S3_PORT")), BUCKET)),
        Boot(job=JOB1, check=check_first, timeout=1500),
        Host(flip),
        Host(lambda run: new_vm(run, "i-vmtest-restored", "restored-vm")),
        Boot(job='BAD=$(cat "$job/bad"); GOOD=$(cat "$job/good")\n' + JOB2, check=check_new_vm,
             cloud_init=False, hostname="restored-vm", timeout=1200),
    ],
)
