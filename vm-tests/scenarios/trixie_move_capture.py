"""trixie-move-capture: the relocation, tuning, generalize and capture claims of roomsy,
postgres-move and capture-redeploy, on Debian 13 (trixie: kernel 6.12, MariaDB 11.8,
PostgreSQL 17, systemd 257, cloud-init 25.1) in two boots instead of seven. Each claim is named;
its guest checks start with "[claim] " and its host checks say the claim when they fail.

boot 1 (cloud-init: examples/cloud-init/user-data.yaml with dbsum/dbload and a data load put in
        front of its runcmd):
  mariadb-move   cloud-init's `dbhost apply` (the example profile: LUN disks -> RAID-0 -> XFS
                 /datadrive -> MariaDB) moves MariaDB 11.8's datadir onto the array; CHECKSUM
                 TABLE of every table identical; a second apply changes nothing.
  tune           the example profile tunes: every MariaDB variable of the tune set is live right
                 after the apply.
  postgres-move  the job moves PostgreSQL 17 (cluster 17/main) onto the same array with a
                 profile of its own (same disks, array and mount; engine postgresql): table
                 hashes identical, postgresql.conf switched and kept in the undo bundle,
                 RequiresMountsFor=, old datadir kept; a second apply of either profile changes
                 nothing (two engines on one array do not undo each other).
  generalize     secrets of >= 15 kinds planted; `dbhost generalize` stops both servers (MariaDB
                 slow shutdown, PostgreSQL control data "shut down") and scrubs; --check clean.
host:
  capture        the captured OS disk holds no planted secret in any file nor in free blocks;
                 `dbhost --sysroot generalize --check` clean on it.
boot 2 (a new VM from the copies, cloud-init with the example unchanged):
  redeploy       array assembled (mdadm absent) and mounted, new machine-id, SSH host keys and
                 server_id, first-boot units succeeded, `dbhost apply` changes nothing.
  reboot         after that boot from the same disks both engines serve the moved datadirs with
                 the data of boot 1 (MariaDB checksums, PostgreSQL table hashes), every tuning
                 knob is in effect, `tune --apply` and the PostgreSQL profile change nothing.
  postgres-tune  last (it retunes the host): `tune --apply` with the PostgreSQL profile and
                 tuning on writes PostgreSQL 17's conf.d; after a restart every database knob is
                 live (SHOW), random_page_cost 1.1 among them.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capture_redeploy as cr  # noqa: E402
import postgres_move as pm  # noqa: E402
from _mariadb import OUT, load_sizes, moved_job, summary, write_files  # noqa: E402
from harness import Boot, Disk, Host, Scenario, ScenarioFailure, expect, read_json, read_text  # noqa: E402
from tune_persist import (INSTALL_DBVARS, after_apply_job, after_reboot_job, check_after_apply,  # noqa: E402
                          check_after_reboot, check_second_tune, second_tune_job)

MARIADB = "11.8"
PG = "17"
PROFILE = "/etc/dbhost/profile.toml"  # written by the example user-data
PG_PROFILE_NAME = "trixie-postgres.toml"
PG_PROFILE = f"/usr/local/share/dbhost/profiles/{PG_PROFILE_NAME}"
PG_TUNE_PROFILE_NAME = "trixie-postgres-tune.toml"
PG_TUNE_PROFILE = f"/usr/local/share/dbhost/profiles/{PG_TUNE_PROFILE_NAME}"
MB = int(os.environ.get("DBHOST_TRIXIE_MB", "16"))
ROWS, BLOBS = load_sizes(MB)

def pg_profile(tuning: bool) -> str:
    """The example's profile (its disks, array and file system) with PostgreSQL instead of
    MariaDB. The PostgreSQL move runs without tuning: the MariaDB profile owns it (two tuning
    owners would set the host's knobs back and forth); postgres-tune uses tuning=True last."""
    ud = cr.example_user_data()
    text = next(f["content"] for f in ud["write_files"] if f["path"] == PROFILE)
    for old, new in [('engine = "mariadb"\ndatadir = "mysql"', 'engine = "postgresql"\ndatadir = "postgresql"'),
                     ("[tuning]\nenabled = true", f"[tuning]\nenabled = {str(tuning).lower()}")]:
        if old not in text:
            raise ScenarioFailure(f"the example profile no longer has {old!r}: update pg_profile()")
        text = text.replace(old, new)
    return text


PG_UNITS = {"kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "tb": 1024 ** 4}


def pg_norm(v: str) -> str:
    """PostgreSQL values as numbers where they are sizes (1GB -> 1073741824)."""
    s = str(v).strip().strip("'").lower()
    for u, m in PG_UNITS.items():
        if s.endswith(u) and s[:-2].isdigit():
            return str(int(s[:-2]) * m)
    return s


def user_data() -> dict:
    """The shipped example with the MariaDB load in front of its runcmd (so the move has data)."""
    ud = cr.example_user_data()
    ud["write_files"] = write_files() + ud.get("write_files", [])
    ud["runcmd"] = [
        "systemctl start mariadb",
        f"/usr/local/bin/dbload {ROWS} {BLOBS} >{OUT}/load.log 2>&1",
        f"/usr/local/bin/dbsum >{OUT}/mysum-before.txt 2>&1",
    ] + ud.get("runcmd", [])
    return ud


def claim(name: str, fn):
    """Host check (or step) of one claim: a failure names the claim."""
    def checked(*args):
        try:
            fn(*args)
        except (ScenarioFailure, AssertionError) as e:
            raise ScenarioFailure(f"[{name}] {e}") from e
    return checked


JOB1 = f"""
o=$VMTEST_OUT
PROFILE={PROFILE}
VMTEST_CLAIM=mariadb-move
check "MariaDB {MARIADB}" sh -c 'mariadb -Nse "SELECT VERSION()" | grep "^{MARIADB}\\."'
check "cloud-init ran dbhost apply (example user-data), exit 0" \\
  grep -q "dbhost apply exited with status 0" /var/log/cloud-init-output.log
cp /var/lib/dbhost/cloud-init-apply.json "$o/apply-1.json" 2>/dev/null
{moved_job(ROWS, "mysum-before.txt", "mysum-after.txt")}
VMTEST_CLAIM=tune
{after_apply_job(PROFILE)}
VMTEST_CLAIM=postgres-move
check "PostgreSQL {PG}" test -d /etc/postgresql/{PG}/main
{pm.setup_job(PG, PG_PROFILE)}
{pm.moved_job(PG, PG_PROFILE)}
dbhost apply --profile $PROFILE --yes --output json >"$o/apply-mariadb-2.json" 2>"$o/apply-mariadb-2.err"
echo $? >"$o/apply-mariadb-2.rc"
check "MariaDB profile again after the PostgreSQL move: exit 0" test "$(cat $o/apply-mariadb-2.rc)" = 0
VMTEST_CLAIM=generalize
{cr.IDENTITY}
dd=$(cat "$o/datadir.txt")
{cr.PLANT_SECRETS}
{cr.GENERALIZE}
check "PostgreSQL stopped by generalize" sh -c '! systemctl is-active postgresql@{PG}-main'
check "control data: shut down" sh -c '/usr/lib/postgresql/{PG}/bin/pg_controldata {pm.NEW} | grep -q "cluster state: *shut down$"'
"""

JOB2 = f"""
PROFILE={PROFILE}
VMTEST_CLAIM=redeploy
{cr.BOOT2}
VMTEST_CLAIM=reboot
/usr/local/bin/dbsum >"$VMTEST_OUT/mysum-redeploy.txt" 2>&1
{after_reboot_job(PROFILE)}
{second_tune_job(PROFILE)}
{pm.rebooted_job(PG)}
dbhost apply --profile {PG_PROFILE} --yes --output json >"$VMTEST_OUT/apply3.out" 2>"$VMTEST_OUT/apply3.err"; echo $? >"$VMTEST_OUT/apply3.rc"
check "PostgreSQL profile after the redeploy: exit 0" test "$(cat $VMTEST_OUT/apply3.rc)" = 0
VMTEST_CLAIM=postgres-tune
check "tune --apply (PostgreSQL profile)" sh -c 'dbhost --output json tune --profile {PG_TUNE_PROFILE} --apply >$VMTEST_OUT/pg-tune-apply.json'
systemctl restart postgresql@{PG}-main
check "PostgreSQL {PG} active after the restart" wait_until 120 systemctl is-active postgresql@{PG}-main
check "tune report (PostgreSQL profile)" sh -c 'dbhost --output json tune --profile {PG_TUNE_PROFILE} >$VMTEST_OUT/pg-tune.json'
{INSTALL_DBVARS}check "PostgreSQL settings read" python3 /tmp/dbvars.py $VMTEST_OUT/pg-tune.json $VMTEST_OUT/pgvars.json postgresql
"""


def check_mariadb_move(run, out):
    s = summary(out / "apply-1.json")
    expect(s["changed"] > 0, f"cloud-init's apply changed nothing: {s}")
    s2 = summary(out / "apply-mariadb-2.json")
    expect(s2["changed"] == 0, f"MariaDB profile after the PostgreSQL move changed something: {s2}")


def check_postgres_move(run, out):
    expect(read_text(out / "apply1.rc").strip() == "0",
           f"apply exit {read_text(out / 'apply1.rc').strip()}: {read_text(out / 'apply1.err')[-1500:]}")
    expect(summary(out / "apply1.out")["changed"] > 0, "PostgreSQL apply changed nothing")
    s2 = summary(out / "apply2.out")
    expect(s2["changed"] == 0, f"second PostgreSQL apply changed something: {s2}")
    before, after = read_text(out / "sum-before.txt"), read_text(out / "sum-after.txt")
    expect(before.count("\n") >= 3, f"pgsum before is too short: {before!r}")
    expect(before == after, f"table hashes differ after apply:\n--- before\n{before}\n--- after\n{after}")


def check1(run, out):
    claim("mariadb-move", check_mariadb_move)(run, out)
    claim("tune", lambda r, o: check_after_apply(o))(run, out)
    claim("postgres-move", check_postgres_move)(run, out)
    claim("generalize", cr.check1)(run, out)


def table_sums(text: str) -> dict:
    """dbsum's output as {table: checksum}, without mysql.global_priv: the accounts table changes
    on purpose between the two boots (the generalize claim creates debian-sys-maint, the first
    boot rotates its password)."""
    rows = dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)
    rows.pop("mysql.global_priv", None)
    return rows


def check_reboot(run, out):
    o1 = run.out(1)
    my_before = table_sums(read_text(o1 / "mysum-before.txt"))
    my_now = table_sums(read_text(out / "mysum-redeploy.txt"))
    expect(any(t.startswith("shop.") for t in my_before), f"dbsum before has no shop tables: {sorted(my_before)}")
    diff = {t: (my_before.get(t), my_now.get(t)) for t in set(my_before) | set(my_now)
            if my_before.get(t) != my_now.get(t)}
    expect(not diff, f"MariaDB CHECKSUM TABLE differs on the redeployed VM (before, now): {diff}")
    pg_before, pg_now = read_text(o1 / "sum-before.txt"), read_text(out / "sum-reboot.txt")
    expect(pg_before == pg_now, f"PostgreSQL table hashes differ on the redeployed VM:\n{pg_before}\n---\n{pg_now}")
    check_after_reboot(out, capped=False)  # the example profile gives no disk caps
    check_second_tune(out)
    expect(read_text(out / "apply3.rc").strip() == "0", f"PostgreSQL apply exit {read_text(out / 'apply3.rc')}")
    s = summary(out / "apply3.out")
    expect(s["changed"] == 0, f"PostgreSQL profile changed something on the redeployed VM: {s}")


def check_postgres_tune(run, out):
    knobs = [k for k in read_json(out / "pg-tune.json")["report"]["knobs"]
             if k["target"].get("kind") == "database"]
    names = {k["target"]["variable"] for k in knobs}
    expect({"shared_buffers", "effective_io_concurrency", "maintenance_io_concurrency", "random_page_cost"} <= names,
           f"PostgreSQL knobs missing from the tune set: {sorted(names)}")
    expect(all(f"/etc/postgresql/{PG}/main/conf.d/" in k["persisted_in"] for k in knobs),
           f"not persisted in PostgreSQL {PG}'s conf.d: {[(k['name'], k['persisted_in']) for k in knobs]}")
    live = read_json(out / "pgvars.json")
    bad = [f"{k['target']['variable']}: SHOW = {live.get(k['target']['variable'])!r}, target {k['value']!r}"
           for k in knobs if pg_norm(live.get(k["target"]["variable"], "")) != pg_norm(k["value"])]
    expect(not bad, "PostgreSQL settings after the restart:\n  " + "\n  ".join(bad))


def check2(run, out):
    claim("redeploy", cr.check2)(run, out)
    claim("reboot", check_reboot)(run, out)
    claim("postgres-tune", check_postgres_tune)(run, out)


SCENARIO = Scenario(
    name="trixie-move-capture",
    description=f"Debian 13: MariaDB {MARIADB} and PostgreSQL {PG} moved onto one RAID-0 (cloud-init + job), "
                "tuned, generalized, captured, scanned, redeployed: same data, new identity",
    image="trixie",
    disks=[
        Disk("lun0", size="2G", bus="scsi", lun=0, serial="data-lun0"),
        Disk("lun1", size="2G", bus="scsi", lun=1, serial="data-lun1"),
    ],
    user_data=user_data() if cr.yaml else {"runcmd": ["false"]},
    profiles={PG_PROFILE_NAME: pg_profile(tuning=False), PG_TUNE_PROFILE_NAME: pg_profile(tuning=True)}
    if cr.yaml else {},
    steps=[
        Host(lambda run: expect(cr.yaml is not None, "python3-yaml is needed to load the example user-data")),
        Boot(job=JOB1, expect_cloud_init=False, check=check1, timeout=1800),
        Host(claim("capture", cr.capture_and_scan)),
        Boot(job=JOB2, user_data=cr.example_user_data() if cr.yaml else None, check=check2, timeout=1500),
    ],
)
