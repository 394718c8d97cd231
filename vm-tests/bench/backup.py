"""bench-backup: how fast dbhost backs up and restores, against reading the datadir raw in the
same guest, and how well it compresses. Figures only: nothing about time is asserted; the
scenario fails on a failed command.

One boot, no cloud-init: one data disk (`data-lun0`, the datadir, moved there by `apply`) and
one backup disk (`bak-lun1`, XFS at /backup, never a dbhost candidate), MariaDB with
DBHOST_BENCH_MB MiB of generated data (default 256: 32 MiB of rows, the rest 64 KiB blobs). The
destination is `file:///backup/b`, so the figures are dbhost's pipeline (tool, zstd, hashing,
writing) rather than an emulator's or QEMU's user network. Page cache dropped before each step:
  raw     `tar -cf - -C /datadrive/mysql . | wc -c` (reading every file of the datadir once);
  backup  physical (mariabackup), then logical (mariadb-dump), zstd level 3, both CPUs;
  restore both into new directories (physical: download, hash, decode, mbstream, --prepare;
          logical: download, hash, decode into data.sql).
Printed (and in runs/bench-backup/ratios.txt): MiB/s of each against raw, the compression ratio
(plain / stored) of each.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scenarios"))
from _backup import profile  # noqa: E402
from _mariadb import load_sizes, tools_job  # noqa: E402
from harness import Boot, Disk, Scenario, expect, log, read_json, read_text  # noqa: E402

MB = int(os.environ.get("DBHOST_BENCH_MB", "256"))
ROWS, BLOBS = load_sizes(MB, rows_mb=32)
DISK = f"{max(2, (MB * 3) // 1024 + 1)}G"
PROFILE_NAME = "bench-backup.toml"
PROFILE = f"/usr/local/share/dbhost/profiles/{PROFILE_NAME}"
PROFILE_TOML = profile("vm-tests bench-backup: one data disk -> MariaDB, backups to a directory on a second disk",
                       "dbdata", "mariadb", "mysql", '[backup]\ndestination = "file:///backup/b"\n')

JOB = tools_job() + f"""
O=$VMTEST_OUT
cd /
ms() {{ echo $(( ($(date +%s%N) - $1) / 1000000 )); }}
drop() {{ sync; echo 3 >/proc/sys/vm/drop_caches; }}
bak=$(for d in /sys/block/sd*; do [ "$(cat $d/device/serial 2>/dev/null || true)" = bak-lun1 ] && basename $d; done)
[ -z "$bak" ] && bak=$(lsblk -dno NAME,SERIAL | awk '$2 == "bak-lun1" {{print $1}}')
mkfs.xfs -q /dev/$bak && mkdir -p /backup && mount /dev/$bak /backup
check "backup disk mounted" findmnt /backup
systemctl start mariadb
/usr/local/bin/dbload {ROWS} {BLOBS} >"$O/load.log" 2>&1
dbhost apply --profile {PROFILE} --yes --output json >"$O/apply.out" 2>"$O/apply.err"
check "apply exited 0" test $? = 0
mysql -e "FLUSH TABLES"
datadir_bytes=$(du -sb /datadrive/mysql | cut -f1)

drop; t=$(date +%s%N); raw=$(tar -cf - -C /datadrive/mysql . | wc -c); raw_ms=$(ms $t)
drop; t=$(date +%s%N); dbhost backup --profile {PROFILE} --kind physical --output json >"$O/phys.json" 2>"$O/phys.err"; rc_p=$?; phys_ms=$(ms $t)
drop; t=$(date +%s%N); dbhost backup --profile {PROFILE} --kind logical --output json >"$O/log.json" 2>"$O/log.err"; rc_l=$?; log_ms=$(ms $t)
check "physical backup exited 0" test $rc_p = 0
check "logical backup exited 0" test $rc_l = 0
pid=$(sed -n 's/.*"id": "\\([^"]*\\)".*/\\1/p' "$O/phys.json" | head -1)
lid=$(sed -n 's/.*"id": "\\([^"]*\\)".*/\\1/p' "$O/log.json" | head -1)
drop; t=$(date +%s%N); dbhost restore "$pid" --profile {PROFILE} --into /datadrive/restored-physical >"$O/rphys.out" 2>"$O/rphys.err"; rc_rp=$?; rphys_ms=$(ms $t)
drop; t=$(date +%s%N); dbhost restore "$lid" --profile {PROFILE} --into /datadrive/restored-logical >"$O/rlog.out" 2>"$O/rlog.err"; rc_rl=$?; rlog_ms=$(ms $t)
check "physical restore exited 0" test $rc_rp = 0
check "logical restore exited 0" test $rc_rl = 0
check "the restored datadir has the orders table" test -e /datadrive/restored-physical/shop/orders.ibd
echo "datadir_bytes=$datadir_bytes raw_bytes=$raw raw_ms=$raw_ms phys_ms=$phys_ms log_ms=$log_ms rphys_ms=$rphys_ms rlog_ms=$rlog_ms" >"$O/figures.txt"
"""


def report(run, out):
    f = dict(kv.split("=", 1) for kv in read_text(out / "figures.txt").split())
    f = {k: int(v) for k, v in f.items()}
    phys, logi = read_json(out / "phys.json"), read_json(out / "log.json")

    def mib_s(nbytes, ms):
        return nbytes / (1 << 20) / max(ms / 1000, 1e-3)

    def sizes(m):
        plain = sum(o["plain_bytes"] for o in m["objects"])
        stored = sum(o["bytes"] for o in m["objects"])
        return plain, stored

    pp, ps = sizes(phys)
    lp, ls = sizes(logi)
    raw = mib_s(f["raw_bytes"], f["raw_ms"])
    d = f["datadir_bytes"]
    rows = [
        ("raw read of the datadir (tar | wc -c)", raw, f["raw_ms"], None),
        ("backup physical (mariabackup -> zstd -> dir)", mib_s(d, f["phys_ms"]), f["phys_ms"], pp / max(ps, 1)),
        ("backup logical (mariadb-dump -> zstd -> dir)", mib_s(d, f["log_ms"]), f["log_ms"], lp / max(ls, 1)),
        ("restore physical (hash, unzstd, mbstream, prepare)", mib_s(pp, f["rphys_ms"]), f["rphys_ms"], None),
        ("restore logical (hash, unzstd -> data.sql)", mib_s(lp, f["rlog_ms"]), f["rlog_ms"], None),
    ]
    expect(all(r[1] > 0 for r in rows), f"a figure is not positive: {rows}")
    lines = [f"bench-backup: datadir {d / (1 << 20):.1f} MiB ({MB} MiB generated), TCG guest, host loaded",
             f"{'what':52} {'MiB/s':>8} {'x raw':>7} {'seconds':>8} {'plain/stored':>13}"]
    for name, rate, ms, ratio in rows:
        lines.append(f"{name:52} {rate:8.1f} {rate / raw:7.2f} {ms / 1000:8.1f} "
                     f"{'' if ratio is None else f'{ratio:13.2f}'}")
    table = "\n".join(lines)
    log(table)
    (run.dir / "ratios.txt").write_text(table + "\n")
    (run.dir / "figures.json").write_text(json.dumps({"figures": f, "physical": [pp, ps], "logical": [lp, ls]}) + "\n")
    run.timings["figures"] = {"raw_mib_s": round(raw, 1), "backup_phys_mib_s": round(rows[1][1], 1),
                              "restore_phys_mib_s": round(rows[3][1], 1), "ratio_phys": round(pp / max(ps, 1), 2)}


SCENARIO = Scenario(
    name="bench-backup",
    suite=False,
    description=f"benchmark: backup and restore MiB/s vs reading the datadir raw, compression ratio ({MB} MiB, dir destination)",
    disks=[Disk("lun0", size=DISK, bus="scsi", lun=0, serial="data-lun0"),
           Disk("lun1", size=DISK, bus="scsi", lun=1, serial="bak-lun1")],
    profiles={PROFILE_NAME: PROFILE_TOML},
    mask=["postgresql.service"],
    steps=[Boot(job=JOB, check=report, timeout=3600)],
)
