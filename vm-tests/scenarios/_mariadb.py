"""Shared pieces of the MariaDB scenarios (not a scenario: the leading underscore)."""

import json

from harness import expect, read_text

# Checksum of every base table except the ones the server rewrites on its own (statistics, logs).
DBSUM = r"""#!/bin/bash
set -euo pipefail
tables=$(mysql -N -B -e "SET SESSION group_concat_max_len = 1000000; SELECT GROUP_CONCAT(CONCAT('\`',table_schema,'\`.\`',table_name,'\`') ORDER BY table_schema, table_name SEPARATOR ', ') FROM information_schema.tables WHERE table_type='BASE TABLE' AND table_schema NOT IN ('information_schema','performance_schema','sys') AND NOT (table_schema='mysql' AND table_name IN ('innodb_table_stats','innodb_index_stats','general_log','slow_log','gtid_slave_pos','transaction_registry'))")
[ -n "$tables" ] || { echo "dbsum: no tables" >&2; exit 1; }
mysql -N -B -e "CHECKSUM TABLE $tables EXTENDED"
"""

LOAD = r"""#!/bin/bash
# dbload ROWS [BLOBS]: a database `shop` with an InnoDB table of ROWS rows (~300 bytes each), a
# MyISAM and an Aria table, and BLOBS rows of 64 KiB in the InnoDB table shop.blobs (bulk bytes:
# ~6x faster to generate under TCG than rows, for the same datadir size).
set -euo pipefail
n=$1
blobs=${2:-0}
mysql -e "CREATE DATABASE IF NOT EXISTS shop"
mysql shop -e "CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(40), qty INT, note VARCHAR(255)) ENGINE=InnoDB"
i=0
while [ $i -lt $n ]; do
  j=$((i + 100000)); [ $j -le $n ] || j=$n
  mysql shop -e "INSERT INTO orders SELECT seq, CONCAT('item-', seq), seq MOD 7, REPEAT(MD5(seq), 7) FROM seq_$((i + 1))_to_$j"
  i=$j
done
mysql shop -e "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(60)) ENGINE=MyISAM; INSERT INTO customers SELECT seq, CONCAT('customer-', seq) FROM seq_1_to_5000"
mysql shop -e "CREATE TABLE audit (id INT PRIMARY KEY, what VARCHAR(60)) ENGINE=Aria; INSERT INTO audit SELECT seq, SHA1(seq) FROM seq_1_to_5000"
if [ "$blobs" -gt 0 ]; then
  mysql shop -e "CREATE TABLE blobs (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB"
  i=0
  while [ $i -lt "$blobs" ]; do
    j=$((i + 256)); [ $j -le "$blobs" ] || j=$blobs
    mysql shop -e "INSERT INTO blobs SELECT seq, REPEAT(MD5(seq), 2048) FROM seq_$((i + 1))_to_$j"
    i=$j
  done
fi
"""


# Bash for a job: a writer that inserts ids BOOT*10^7+i into live.w all the time; each id the
# server acknowledged goes to $VMTEST_OUT/acked.txt (on the harness's share, so a power cut
# cannot lose the record). start_writer / stop_writer.
WRITER = r"""
start_writer() {
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
}
stop_writer() { touch /run/crash-writer.stop; wait $WRITER; }
"""


def acked_rows_lost(run, present_ids_file) -> tuple:
    """(acknowledged, lost): every id the writer recorded in any boot's acked.txt that is not in
    PRESENT_IDS_FILE (the ids in live.w at the end, one per line)."""
    present = set(read_text(present_ids_file).split())
    acked, lost = 0, []
    for n in range(1, run.boot_no + 1):
        p = run.out(n) / "acked.txt"
        if p.exists():
            ids = read_text(p).split()
            acked += len(ids)
            lost += [i for i in ids if i not in present]
            run.timings[f"acked-boot-{n}"] = len(ids)
    expect(acked > 0, "the writer got no row acknowledged")
    expect(not lost, f"{len(lost)} of {acked} acknowledged rows lost, e.g. {lost[:20]}")
    return acked, lost


def load_sizes(mb: int, rows_mb: int = 128) -> tuple:
    """(ROWS, BLOBS) for `dbload` to make about `mb` MiB: up to `rows_mb` MiB of rows, the rest
    as 64 KiB blobs."""
    r = min(rows_mb, mb)
    return max(1000, r * 1024 * 1024 // 300), max(0, (mb - r) * 16)

OUT = "/run/vmtest/out"


def events(path):
    """dbhost --output json: one JSON event per line."""
    evs = []
    for line in read_text(path).splitlines():
        line = line.strip()
        if line:
            try:
                evs.append(json.loads(line))
            except json.JSONDecodeError:
                raise AssertionError(f"{path.name}: not a JSON event: {line[:300]!r}")
    return evs


def summary(path):
    s = [e for e in events(path) if e.get("event") == "summary"]
    expect(len(s) == 1, f"{path.name}: expected one summary event, got {s}")
    return s[0]




def blank(path) -> bool:
    """True when the disk image file holds only zeros (host-side: nothing was written)."""
    with open(path, "rb") as f:
        while True:
            b = f.read(8 << 20)
            if not b:
                return True
            if b.count(0) != len(b):
                return False


def write_files():
    return [
        {"path": "/usr/local/bin/dbsum", "permissions": "0755", "content": DBSUM},
        {"path": "/usr/local/bin/dbload", "permissions": "0755", "content": LOAD},
    ]


def files_job(files: list) -> str:
    """Bash for a job (no cloud-init) that writes cloud-init write_files entries itself."""
    parts = []
    for f in files:
        parts.append(f"cat >{f['path']} <<'DBHOST_EOF'\n{f['content'].rstrip()}\nDBHOST_EOF\n"
                     f"chmod {f['permissions']} {f['path']}\n")
    return "".join(parts)


def tools_job() -> str:
    """Bash for a job (no cloud-init) that installs dbsum and dbload like write_files() does."""
    return files_job(write_files())


def moved_job(rows: int, before: str, after: str) -> str:
    """Bash after a move of MariaDB onto the array: it serves /datadrive/mysql from the md device,
    every table's checksum (dbsum into $VMTEST_OUT/AFTER) equals $VMTEST_OUT/BEFORE, shop.orders
    has ROWS rows."""
    return f"""
check "MariaDB is active" systemctl is-active mariadb
check "datadir is /datadrive/mysql" test "$(mariadb -Nse 'SELECT @@datadir')" = /datadrive/mysql/
check "/datadrive is on the md array" sh -c 'findmnt -no SOURCE -T /datadrive/mysql | grep -q "^/dev/md"'
/usr/local/bin/dbsum >"$VMTEST_OUT/{after}" 2>&1
check "CHECKSUM TABLE identical after apply" cmp "$VMTEST_OUT/{before}" "$VMTEST_OUT/{after}"
check "row count" test "$(mariadb -Nse 'SELECT COUNT(*) FROM shop.orders')" = {rows}
"""


def run_dbhost(args: str, name: str) -> str:
    """Bash for a job: run dbhost, keep NAME.out, NAME.err, NAME.rc in the results."""
    o = f"$VMTEST_OUT/{name}"
    return f"dbhost {args} >{o}.out 2>{o}.err; echo $? >{o}.rc\n"


def rc(out, name) -> int:
    return int(read_text(out / f"{name}.rc").strip())
