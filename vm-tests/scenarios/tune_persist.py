"""tune-persist: tuning applied by `dbhost apply` is in effect after a reboot, and re-runs are no-ops.

Boot 1: `dbhost apply --yes` with a qemu-dev-like profile (2 data disks -> RAID-0 -> XFS ->
MariaDB, tuning on, per-disk caps 20 MB/s / 400 IOPS), then a clean reboot. Boot 2: every knob
of `dbhost --output json tune` is in effect (queue scheduler/nr_requests/... on the members,
read_ahead_kb on the md device, sysctls, THP, mount options, MariaDB variables through
`SELECT @@var` on the running server), `tune --explain` lists every knob with current, target,
reason and persisted-in, and a second `apply --yes` and `tune --apply` change nothing.

In the suite, roomsy runs these checks (after_apply_job, after_reboot_job, second_tune_job and
their check_* functions) with its own profile, which has tuning on: that saves two boots."""

import json

from harness import Boot, Disk, Scenario, expect, read_json, read_text, log

PROFILE_NAME = "vmtest-tune.toml"
PROFILE = """\
version = 1
description = "vm-tests tune-persist: data* disks -> RAID-0 -> XFS at /datadrive -> MariaDB, tuned"

[disks]
platform = "qemu"
allowed-cache-modes = ["none"]
assume-cache-mode = "none"
select = "match"
serial = ["data*"]
min-size = "128M"
expected-count = 2
wait-timeout = "60s"

[array]
level = "raid0"
chunk = "512K"
name = "dbdata"

[filesystem]
type = "xfs"
label = "dbdata"
mount-point = "/datadrive"

[database]
engine = "mariadb"
datadir = "mysql"

[tuning]
enabled = true
disk-mbps = 20
disk-iops = 400
"""

P = f"/usr/local/share/dbhost/profiles/{PROFILE_NAME}"


def tune_cmd(profile: str) -> str:
    # `dbhost tune --profile` takes the engine, caps and overrides from the profile apply used.
    return f"dbhost --output json tune --profile {profile}"


# Live database values of every Database knob, from the running server:
# dbvars.py TUNE.json OUT.json [mariadb|postgresql].
DBVARS = r"""
import json, subprocess, sys
t = json.load(open(sys.argv[1]))
engine = sys.argv[3] if len(sys.argv) > 3 else "mariadb"
def query(var):
    if engine == "postgresql":
        return ["runuser", "-u", "postgres", "--", "psql", "-XAtqc", f"SHOW {var}"]
    return ["mariadb", "-N", "-B", "-e", f"SELECT @@GLOBAL.{var}"]
out = {}
for k in t["report"]["knobs"]:
    tg = k["target"]
    if tg.get("kind") == "database":
        var = tg["variable"]
        p = subprocess.run(query(var), capture_output=True, text=True, cwd="/")
        out[var] = p.stdout.strip() if p.returncode == 0 else "ERROR " + p.stderr.strip()
json.dump(out, open(sys.argv[2], "w"), indent=1)
"""


INSTALL_DBVARS = f"cat >/tmp/dbvars.py <<'EOF'\n{DBVARS}\nEOF\n"


def after_apply_job(profile: str) -> str:
    """Bash right after the first apply: the knobs and the live MariaDB variables (check_after_apply)."""
    return f"""
export O=$VMTEST_OUT
check "tune (explain) after apply" sh -c '{tune_cmd(profile)} >$O/tune-boot1.json'
{INSTALL_DBVARS}check "database variables right after apply" python3 /tmp/dbvars.py $O/tune-boot1.json $O/dbvars-boot1.json
"""


def after_reboot_job(profile: str) -> str:
    """Bash after the reboot, before anything re-applies: every knob, --explain, live variables."""
    return f"""
export O=$VMTEST_OUT
check "mariadb active after reboot" wait_until 180 systemctl is-active --quiet mariadb
check "/datadrive mounted" findmnt /datadrive
check "tune after reboot" sh -c '{tune_cmd(profile)} >$O/tune.json'
check "tune --explain" sh -c '{tune_cmd(profile).replace("--output json ", "")} --explain >$O/explain.txt'
{INSTALL_DBVARS}check "database variables" python3 /tmp/dbvars.py $O/tune.json $O/dbvars.json
"""


def second_tune_job(profile: str) -> str:
    """Bash after the second apply: `tune --apply` changes nothing (check_second_tune)."""
    return f"""
check "second tune --apply" sh -c '{tune_cmd(profile)} --apply >$VMTEST_OUT/tune-apply2.json'
"""


JOB1 = f"""
export O=$VMTEST_OUT
check "apply --yes" sh -c 'dbhost --output json apply --profile {P} --yes >$O/apply1.out 2>$O/apply1.err'
tail -c 3000 $O/apply1.err
""" + after_apply_job(P) + """
next_boot reboot
"""

JOB2 = after_reboot_job(P) + f"""
check "second apply --yes" sh -c 'dbhost --output json apply --profile {P} --yes >$O/apply2.out 2>$O/apply2.err'
""" + second_tune_job(P)

UNITS = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}


def norm(v: str) -> str:
    """Database values as numbers where they are sizes (1G -> 1073741824), lower-case otherwise."""
    s = str(v).strip().strip("'\"").lower()
    if s[:-1].isdigit() and s[-1:] in UNITS:
        return str(int(s[:-1]) * UNITS[s[-1]])
    return {"on": "1", "off": "0", "true": "1", "false": "0"}.get(s, s)


def summary(path) -> dict:
    lines = [json.loads(x) for x in read_text(path).splitlines() if x.strip().startswith("{")]
    s = [x for x in lines if x.get("event") == "summary"]
    expect(s, f"{path.name}: no summary event")
    return s[-1]


def live_database_values(knobs: list, dbv: dict, when: str) -> dict:
    """Every database knob's target equals the running server's value (SELECT @@var)."""
    expect(dbv, f"no database knobs queried {when}")
    bad = []
    for k in knobs:
        tg = k["target"]
        if tg.get("kind") != "database":
            continue
        var = tg["variable"]
        live = dbv.get(var)
        if live is None or norm(live) != norm(k["value"]):
            bad.append(f"{var}: SELECT @@{var} = {live!r}, target {k['value']!r}")
    expect(not bad, f"MariaDB variables {when}:\n  " + "\n  ".join(bad))
    return dbv


def check_after_apply(out):
    # Tuning runs before the relocation, so the move's own restart applies the settings.
    knobs = read_json(out / "tune-boot1.json")["report"]["knobs"]
    live_database_values(knobs, read_json(out / "dbvars-boot1.json"), "right after the first apply")


def check_after_reboot(out, capped: bool = True):
    """capped: the profile gives disk caps (disk-mbps/disk-iops), so InnoDB's I/O capacity is
    sized from them; without caps dbhost has nothing to size it from and leaves it alone."""
    t = read_json(out / "tune.json")
    knobs = t["report"]["knobs"]
    names = {k["name"] for k in knobs}
    wants = ["scheduler", "read_ahead_kb", "vm.swappiness", "transparent_hugepage", "innodb_buffer_pool_size"]
    if capped:
        wants.append("innodb_io_capacity")
    # nr_requests belongs to a scheduler: with `none` (multi-queue virtio-scsi) it is left alone.
    if any(k["name"] == "queue.scheduler" and k["value"] != "none" for k in knobs):
        wants.append("nr_requests")
    for want in wants:
        expect(any(n == want or n.endswith("." + want) for n in names), f"tune.json: no knob {want!r} in {sorted(names)}")
    expect(any(k.get("device", "").startswith("md") and k["name"].endswith("read_ahead_kb") for k in knobs),
           f"no read_ahead_kb knob on the md device: {[(k['name'], k.get('device')) for k in knobs]}")
    bad = [f"{k['name']}@{k.get('device', '-')}: current {k.get('current')!r}, target {k['value']!r}"
           for k in knobs if not k["in_effect"]]
    expect(not bad, "knobs not in effect after the reboot:\n  " + "\n  ".join(bad))
    dbv = live_database_values(knobs, read_json(out / "dbvars.json"), "after the reboot")
    ex = read_text(out / "explain.txt")
    miss = []
    for k in knobs:
        for what in (k["name"], k["value"], k["reason"], k["persisted_in"] or "(not persisted)"):
            if what not in ex:
                miss.append(f"{k['name']}: {what!r}")
    expect(not miss, "tune --explain misses:\n  " + "\n  ".join(miss) + "\n" + ex[-2000:])
    log(f"tune: {len(knobs)} knobs in effect after reboot; MariaDB: "
        + ", ".join(f"{k}={v}" for k, v in sorted(dbv.items())))


def check_second_tune(out):
    t2 = read_json(out / "tune-apply2.json")
    expect(t2["report"]["changed"] is False, f"second tune --apply changed something: {str(t2['report'])[:1500]}")


def check1(run, out):
    expect(summary(out / "apply1.out")["changed"] > 0, "first apply changed nothing")
    check_after_apply(out)


def check2(run, out):
    check_after_reboot(out)
    s = summary(out / "apply2.out")
    expect(s["changed"] == 0, f"second apply changed {s['changed']} step(s): {read_text(out / 'apply2.out')[-1500:]}")
    check_second_tune(out)


SCENARIO = Scenario(
    name="tune-persist",
    description="apply with tuning on, reboot: every knob of `dbhost tune` in effect; re-apply changes nothing",
    disks=[Disk(f"d{i}", size="1G", bus="scsi", lun=i - 1, serial=f"data{i}") for i in (1, 2)],
    profiles={PROFILE_NAME: PROFILE},
    user_data=None,
    mask=["postgresql.service"],
    suite=False,  # in the suite as part of roomsy (its profile tunes; same checks after apply and reboot)
    steps=[Boot(job=JOB1, check=check1), Boot(job=JOB2, check=check2)],
)
