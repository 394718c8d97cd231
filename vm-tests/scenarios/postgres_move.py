"""postgres-move: roomsy for PostgreSQL. Two blank no-cache virtio-scsi disks at LUN 0/1, Debian
bookworm's PostgreSQL 15 (cluster 15/main) loaded with generated data (DBHOST_PG_MB, default 16
MiB: a plain table with indexes, a TOAST-ed column stored out of line, a sequence), `dbhost apply`
run by the job (cloud-init running apply is covered by roomsy) with a PostgreSQL profile. Proves: the apply exits 0 and changed something; an
md5 over every user table's rows (ordered by id), the row counts and the sequence are identical
before and after; `SHOW data_directory` is /datadrive/postgresql on the md device; the old datadir
is kept renamed; postgresql@15-main has dbhost's RequiresMountsFor= drop-in; a second apply
changes nothing (exit 0, summary changed=0); after a reboot (mdadm absent) the array is assembled
by dbhost's boot unit, mounted, PostgreSQL is up on the new datadir with identical data, and apply
still changes nothing."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _mariadb import OUT, events, files_job, summary  # noqa: E402
from _migrate import PGWRITER, max_gap, no_acked_row_lost  # noqa: E402
from harness import Boot, Disk, Scenario, dbhost_runcmd, expect, log, read_text  # noqa: E402

PROFILE_NAME = "postgres-move.toml"
PROFILE = f"/usr/local/share/dbhost/profiles/{PROFILE_NAME}"
MB = int(os.environ.get("DBHOST_PG_MB", "16"))
# ~330 bytes per heap row (224-byte note + tuple header) plus the indexes; the TOAST table adds
# ROWS/128 rows of 8 KiB.
ROWS = max(1000, MB * 1024 * 1024 // 400)
DOCS = max(100, ROWS // 128)
DISK = f"{max(2, (MB * 3) // 1024 + 1)}G"
NEW = "/datadrive/postgresql"

PROFILE_TOML = """version = 1
description = "vm-tests postgres-move: data* disks -> RAID-0 (512K) -> XFS at /datadrive -> PostgreSQL"

[disks]
platform = "qemu"
allowed-cache-modes = ["none"]
assume-cache-mode = "none"
select = "match"
serial = ["data*"]
min-size = "128M"
expected-count = "all"
wait-timeout = "120s"

[array]
level = "raid0"
chunk = "512K"
name = "pgdata"

[filesystem]
type = "xfs"
label = "pgdata"
mount-point = "/datadrive"
device-timeout = "60s"

[database]
engine = "postgresql"
datadir = "postgresql"

[tuning]
enabled = true
"""

# One line per user table: name, row count, md5 over the md5 of every row ordered by id; then
# the sequence's state. Run as postgres over the local socket.
PGSUM = r"""#!/bin/bash
set -euo pipefail
q() { runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -d shop -c "$1"; }
tables=$(q "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'w' ORDER BY tablename")
[ -n "$tables" ] || { echo "pgsum: no tables" >&2; exit 1; }
for t in $tables; do
  echo "$t $(q "SELECT count(*) || ' ' || coalesce(md5(string_agg(md5(x::text), '' ORDER BY id)), '-') FROM $t x")"
done
echo "seq $(q "SELECT last_value || ' ' || is_called FROM order_no")"
"""

PGLOAD = r"""#!/bin/bash
# pgload ROWS DOCS: database `shop`: orders (ROWS rows, primary key + 2 indexes), docs (DOCS rows
# of 8 KiB stored out of line in its TOAST table), a sequence advanced ROWS/10 times.
set -euo pipefail
rows=$1 docs=$2
cd /
runuser -u postgres -- createdb shop
runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d shop <<SQL
CREATE SEQUENCE order_no;
CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL, qty int NOT NULL, note text,
                     no bigint NOT NULL DEFAULT nextval('order_no'));
INSERT INTO orders (id, item, qty, note)
  SELECT i, 'item-' || i, i % 7, repeat(md5(i::text), 7) FROM generate_series(1, $rows) i;
CREATE INDEX orders_item ON orders (item);
CREATE INDEX orders_qty ON orders (qty, id);
CREATE TABLE docs (id int PRIMARY KEY, body text NOT NULL);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO docs SELECT i, repeat(md5(i::text), 256) FROM generate_series(1, $docs) i;
SELECT setval('order_no', (SELECT max(no) FROM orders) + 17);
CHECKPOINT;
SQL
"""


def check_first(run, out):
    expect(read_text(out / "apply1.rc").strip() == "0",
           f"apply exit {read_text(out / 'apply1.rc').strip()}: {read_text(out / 'apply1.err')[-1500:]}")
    s = summary(out / "apply1.out")
    expect(s["changed"] > 0, f"first apply changed nothing: {s}")
    expect(read_text(out / "apply2.rc").strip() == "0", f"apply2 exit {read_text(out / 'apply2.rc').strip()}")
    s2 = summary(out / "apply2.out")
    expect(s2["changed"] == 0, f"apply2: second apply changed something: {s2}")
    before = read_text(out / "sum-before.txt")
    after = read_text(out / "sum-after.txt")
    expect(before.count("\n") >= 3, f"pgsum before is too short: {before!r}")
    expect(before == after, f"table hashes differ after apply:\n--- before\n{before}\n--- after\n{after}")
    t = read_text(out / "timing.txt")
    run.timings["guest"] = dict(line.split("=", 1) for line in t.split())
    acks = no_acked_row_lost(run, [out / "acked.txt"], out / "present.txt", "postgres-move")
    ph = dict(line.split() for line in read_text(out / "phases.txt").splitlines())
    gap, _ = max_gap(sorted(acks.values()), float(ph["apply-start"]), float(ph["apply-end"]))
    fin = {e["step"]: e for e in events(out / "apply1.out") if e.get("event") == "finished"}
    for st in ("db.clone", "db.follow", "db.catch-up"):
        expect(st in fin, f"apply1: {st} did not run (the replica method): {sorted(fin)}")
    window = sum(fin[s]["seconds"] for s in ("db.stop", "db.catch-up", "db.switch-config", "db.keep-old", "db.start") if s in fin)
    log(f"    postgres-move: relocated through a replica under load: longest gap between acknowledged "
        f"commits {gap:.2f} s; dbhost's stop..start steps {window:.2f} s")
    run.timings["figures"] = {"gap_s": round(gap, 2), "window_s": round(window, 2), "acked": len(acks)}


def check_reboot(run, out):
    before = read_text(run.out(1) / "sum-before.txt")
    after = read_text(out / "sum-reboot.txt")
    expect(before == after, f"table hashes differ after reboot:\n--- before\n{before}\n--- after\n{after}")
    expect(read_text(out / "apply3.rc").strip() == "0", f"apply after reboot exit {read_text(out / 'apply3.rc')}")
    s = summary(out / "apply3.out")
    expect(s["changed"] == 0, f"apply after reboot changed something: {s}")


PSQL = "runuser -u postgres -- psql -X -A -t -q"



def tools_job() -> str:
    """Bash for a job: install pgsum, pgload and pgwriter."""
    return files_job([{"path": "/usr/local/bin/pgsum", "permissions": "0755", "content": PGSUM},
                      {"path": "/usr/local/bin/pgload", "permissions": "0755", "content": PGLOAD},
                      {"path": "/usr/local/bin/pgwriter", "permissions": "0755", "content": PGWRITER}])


# The relocation runs under a write load (pgwriter: 20 commits/s over the local socket, every
# acknowledged id recorded): PostgreSQL moves through a streaming replica, so the writer sees
# one restart, and no acknowledged row may be lost.
def setup_job(ver: str, profile: str = PROFILE) -> str:
    """Bash: start cluster VER/main, load it, hash it (sum-before.txt), apply PROFILE (apply1.*)
    under a writer (acked.txt, present.txt, phases.txt)."""
    return tools_job() + f"""
sed -i '1i local shop postgres trust' /etc/postgresql/{ver}/main/pg_hba.conf
systemctl start postgresql@{ver}-main
t0=$(date +%s); /usr/local/bin/pgload {ROWS} {DOCS} >{OUT}/load.log 2>&1; echo $(( $(date +%s) - t0 )) >{OUT}/load.s
runuser -u postgres -- psql -X -q -d shop -c "CREATE TABLE w (id bigint PRIMARY KEY, t double precision, pad text)"
/usr/local/bin/pgsum >{OUT}/sum-before.txt 2>&1
echo /var/run/postgresql/.s.PGSQL.5432 >/run/db-endpoint
PGUSER=postgres /usr/local/bin/pgwriter {OUT}/acked.txt 20 /run/db-endpoint 1 shop &
wp=$!
sleep 2
echo "apply-start $(date +%s.%N)" >{OUT}/phases.txt
t0=$(date +%s); {dbhost_runcmd(f'apply --profile {profile} --yes --output json', 'apply1')}; echo $(( $(date +%s) - t0 )) >{OUT}/apply1.s
echo "apply-end $(date +%s.%N)" >>{OUT}/phases.txt
sleep 3
kill -TERM $wp; wait $wp
runuser -u postgres -- psql -X -q -A -t -d shop -c "SELECT id FROM w ORDER BY id" >{OUT}/present.txt
"""


def moved_job(ver: str, profile: str = PROFILE) -> str:
    """Bash after the apply of setup_job: where PostgreSQL VER serves from, what dbhost changed
    and kept, the data (sum-after.txt), and a second apply (apply2.*)."""
    conf = f"/etc/postgresql/{ver}/main/postgresql.conf"
    return f"""
cd /
check "apply exited 0" test "$(cat $VMTEST_OUT/apply1.rc)" = 0
check "postgresql@{ver}-main is active" systemctl is-active postgresql@{ver}-main
check "data_directory is {NEW}" test "$({PSQL} -c 'SHOW data_directory')" = {NEW}
check "{NEW} is on the md array" sh -c 'findmnt -no SOURCE -T {NEW} | grep -q "^/dev/md"'
check "postgresql.conf names {NEW}" grep -Eq "^data_directory = '{NEW}'" {conf}
check "postgresql.conf still owned by postgres" test "$(stat -c %U:%G {conf})" = postgres:postgres
check "undo bundle holds postgresql.conf" sh -c 'for b in /var/lib/dbhost/undo/*/bundle.tar.gz; do tar -tzf "$b"; done | grep -q "{conf.lstrip('/')}"'
check "RequiresMountsFor drop-in" sh -c 'systemctl show -p RequiresMountsFor postgresql@{ver}-main | grep -q {NEW}'
check "old datadir kept, renamed" sh -c 'test -f /var/lib/postgresql/{ver}/main.dbhost-old-*/PG_VERSION && ! test -e /var/lib/postgresql/{ver}/main'
check "the TOAST table holds the docs" test "$({PSQL} -d shop -c "SELECT pg_relation_size(reltoastrelid) > 4 * 1024 * {DOCS} FROM pg_class WHERE relname = 'docs'")" = t
/usr/local/bin/pgsum >"$VMTEST_OUT/sum-after.txt" 2>&1
check "table hashes identical after apply" cmp "$VMTEST_OUT/sum-before.txt" "$VMTEST_OUT/sum-after.txt"
check "the replica unit is gone" sh -c '! systemctl is-active dbhost-replica.service'
check "no standby settings left" sh -c '! test -e /datadrive/postgresql/standby.signal && ! grep -q primary_conninfo /datadrive/postgresql/postgresql.auto.conf'
check "the new server is a primary" test "$({PSQL} -c 'SELECT pg_is_in_recovery()')" = f
check "orders row count" test "$({PSQL} -d shop -c 'SELECT count(*) FROM orders')" = {ROWS}
check "docs row count" test "$({PSQL} -d shop -c 'SELECT count(*) FROM docs')" = {DOCS}
check "index scan works" test "$({PSQL} -d shop -c "SET enable_seqscan = off; SELECT id FROM orders WHERE item = 'item-{ROWS}'")" = {ROWS}
dbhost apply --profile {profile} --yes --output json >"$VMTEST_OUT/apply2.out" 2>"$VMTEST_OUT/apply2.err"; echo $? >"$VMTEST_OUT/apply2.rc"
check "second apply exited 0" test "$(cat $VMTEST_OUT/apply2.rc)" = 0
cp {conf} "$VMTEST_OUT/postgresql.conf"
cp -r /etc/postgresql/{ver}/main/conf.d "$VMTEST_OUT/conf.d" 2>/dev/null || true
"""


def rebooted_job(ver: str) -> str:
    """Bash at a later boot from the same disks: PostgreSQL VER up on the moved datadir, its
    data (sum-reboot.txt)."""
    return f"""
cd /
wait_until 120 systemctl is-active postgresql@{ver}-main
check "PostgreSQL is active after reboot" systemctl is-active postgresql@{ver}-main
check "data_directory still {NEW}" test "$({PSQL} -c 'SHOW data_directory')" = {NEW}
/usr/local/bin/pgsum >"$VMTEST_OUT/sum-reboot.txt" 2>&1
check "pgsum after reboot ran" test -s "$VMTEST_OUT/sum-reboot.txt"
"""


# What roomsy has cloud-init do, done by the job: cloud-init running `dbhost apply` is covered by
# roomsy (and capture-redeploy); here it would only add a minute of TCG.
JOB1 = setup_job("15") + f"""
cd /
echo "load_s=$(cat $VMTEST_OUT/load.s) apply_s=$(cat $VMTEST_OUT/apply1.s) mb={MB} rows={ROWS} docs={DOCS}" >"$VMTEST_OUT/timing.txt"
du -sm {NEW} >"$VMTEST_OUT/du.txt" 2>&1
""" + moved_job("15") + """
dbhost status >"$VMTEST_OUT/status.txt" 2>&1
cat /proc/mdstat >"$VMTEST_OUT/mdstat.txt"
cp /etc/fstab "$VMTEST_OUT/fstab.txt"
next_boot reboot
"""

JOB2 = f"""
cd /
check "mdadm is absent" sh -c '! command -v mdadm && ! test -e /sbin/mdadm'
check "array assembled at boot" grep -q "active raid0" /proc/mdstat
check "/datadrive mounted from md" sh -c 'findmnt -no SOURCE /datadrive | grep -q "^/dev/md"'
""" + rebooted_job("15") + f"""
check "tuning in effect after the restart" test "$({PSQL} -c 'SHOW random_page_cost')" = 1.1
dbhost apply --profile {PROFILE} --yes --output json >"$VMTEST_OUT/apply3.out" 2>"$VMTEST_OUT/apply3.err"; echo $? >"$VMTEST_OUT/apply3.rc"
check "apply after reboot exited 0" test "$(cat $VMTEST_OUT/apply3.rc)" = 0
dbhost status >"$VMTEST_OUT/status.txt" 2>&1
"""

SCENARIO = Scenario(
    name="postgres-move",
    suite=True,  # passed in a guest: 736 s
    description=f"apply: PostgreSQL 15 ({MB} MiB) onto a fresh 2-disk RAID-0; same table hashes, idempotent, survives reboot",
    disks=[
        Disk("lun0", size=DISK, bus="scsi", lun=0, serial="data-lun0"),
        Disk("lun1", size=DISK, bus="scsi", lun=1, serial="data-lun1"),
    ],
    mask=["mariadb.service"],
    profiles={PROFILE_NAME: PROFILE_TOML},
    steps=[
        Boot(job=JOB1, check=check_first, timeout=1500),
        Boot(job=JOB2, check=check_reboot, cloud_init=False),
    ],
)
