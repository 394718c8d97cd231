"""Shared pieces of the migrate scenarios (not a scenario: the leading underscore).

The "old host" is a second server instance in the same guest: it listens on 127.0.0.2 with its
datadir on the OS disk and runs under a unit of its own (pg-old.service, maria-old.service), so
the new host's server (Debian's cluster / mariadb.service, moved onto the array by `dbhost
apply`) and the old one never share a socket or a datadir. A writer commits rows all the time
and records each acknowledged id; the cutover hook rewrites the endpoint file the writer reads
at every reconnect, as a DNS change moves real clients.
"""

from pathlib import Path

from harness import expect, log, read_text

BENCH = Path(__file__).resolve().parent.parent / "bench"
PGWRITER = (BENCH / "pgwriter.py").read_text()
DBWRITER = (BENCH / "dbwriter.py").read_text()

PG_OLD = "/var/lib/pg-old/data"
PG_OLD_SOCK = "/run/pg-old/.s.PGSQL.5433"
PG_NEW_SOCK = "/var/run/postgresql/.s.PGSQL.5432"

# Under /usr/local/lib (not /etc/systemd/system, where `systemctl mask` writes its link), as a
# packaged unit would be.
PG_OLD_UNIT = """[Unit]
Description=the old host's PostgreSQL (vm-tests: 127.0.0.2:5433, datadir on the OS disk)
After=network.target

[Service]
Type=notify
User=postgres
ExecStart=/usr/lib/postgresql/15/bin/postgres -D /var/lib/pg-old/data
ExecReload=/bin/kill -HUP $MAINPID
KillMode=mixed
KillSignal=SIGINT
TimeoutSec=300
RuntimeDirectory=pg-old
RuntimeDirectoryMode=2775

[Install]
WantedBy=multi-user.target
"""

# No replication line yet: `migrate plan` must print the one to add. The writer (root, as role
# postgres) is trusted on shop over the socket.
PG_OLD_HBA = """local shop postgres trust
local all all peer
local replication all peer
host all postgres 127.0.0.0/8 scram-sha-256
"""

PG_OLD_CONF = """listen_addresses = '127.0.0.2'
port = 5433
unix_socket_directories = '/run/pg-old'
wal_level = replica
max_wal_senders = 10
"""


def pg_old_setup(rows: int) -> str:
    """Bash: the old host's PostgreSQL with database shop (orders: ROWS rows; w: the writer's),
    a replication role and a password for postgres. Password files in /root."""
    return f"""
mkdir -p /var/lib/pg-old && chown postgres:postgres /var/lib/pg-old
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D {PG_OLD} --auth-local=peer --auth-host=scram-sha-256 >/dev/null
cat >>{PG_OLD}/postgresql.conf <<'EOF'
{PG_OLD_CONF}EOF
cat >{PG_OLD}/pg_hba.conf <<'EOF'
{PG_OLD_HBA}EOF
mkdir -p /usr/local/lib/systemd/system
cat >/usr/local/lib/systemd/system/pg-old.service <<'EOF'
{PG_OLD_UNIT}EOF
systemctl daemon-reload
systemctl enable --now pg-old.service
check "the old host's PostgreSQL runs on 127.0.0.2:5433" systemctl is-active pg-old.service
oldsql() {{ runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -h /run/pg-old -p 5433 "$@"; }}
oldsql -c "ALTER ROLE postgres PASSWORD 'src-secret'"
oldsql -c "CREATE ROLE repl LOGIN REPLICATION PASSWORD 'repl-secret'"
oldsql -c "CREATE DATABASE shop"
oldsql -d shop -c "CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL, note text); \\
  INSERT INTO orders SELECT i, 'item-' || i, repeat(md5(i::text), 4) FROM generate_series(1, {rows}) i; \\
  CREATE INDEX orders_item ON orders (item); CREATE SEQUENCE order_no; SELECT setval('order_no', 4242); \\
  CREATE TABLE w (id bigint PRIMARY KEY, t double precision, pad text)"
printf 'src-secret\\n' >/root/src.pw; printf 'repl-secret\\n' >/root/repl.pw; printf 'wrong\\n' >/root/bad.pw
chmod 600 /root/*.pw
"""


# Row count and md5 of the static tables (the writer's table w changes all the time).
PGSUM = r"""#!/bin/bash
# pgsum [psql args...]: one line per static table of shop: rows and an md5 over every row.
set -euo pipefail
q() { runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
echo "orders $(q "$@" -d shop -c "SELECT count(*) || ' ' || md5(string_agg(md5(x::text), '' ORDER BY id)) FROM orders x")"
echo "seq $(q "$@" -d shop -c "SELECT last_value FROM order_no")"
"""


def migrate_profile(name: str, engine: str, extra: str) -> str:
    return f"""version = 1
description = "vm-tests {name}: data* disks -> RAID-0 -> XFS at /datadrive -> {engine}, imported from 127.0.0.2"

[disks]
platform = "qemu"
allowed-cache-modes = ["none"]
assume-cache-mode = "none"
select = "match"
serial = ["data*"]
min-size = "128M"
expected-count = "all"

[array]
level = "raid0"
name = "dbdata"

[filesystem]
type = "xfs"
label = "dbdata"
mount-point = "/datadrive"

[database]
engine = "{engine}"

[tuning]
enabled = false

[migrate]
source-host = "127.0.0.2"
{extra}"""


def writer_tools() -> str:
    return f"""
cat >/usr/local/bin/pgwriter <<'EOF_PGW'
{PGWRITER}EOF_PGW
cat >/usr/local/bin/dbwriter <<'EOF_DBW'
{DBWRITER}EOF_DBW
cat >/usr/local/bin/pgsum <<'EOF_SUM'
{PGSUM}EOF_SUM
chmod 755 /usr/local/bin/pgwriter /usr/local/bin/dbwriter /usr/local/bin/pgsum
"""


def acked(path: Path) -> dict:
    """id -> ack time of a writer's OUT file."""
    out = {}
    if not path.exists():
        return out
    for line in read_text(path).split("\n"):
        if line.strip():
            i, t = line.split()
            out[int(i)] = float(t)
    return out


def max_gap(times: list, start: float, end: float) -> tuple:
    """Longest interval between consecutive acknowledgements that overlaps [start, end]."""
    best = (0.0, start)
    for a, b in zip(times, times[1:]):
        if b >= start and a <= end and b - a > best[0]:
            best = (b - a, a)
    return best


def no_acked_row_lost(run, acked_files: list, present_file: Path, label: str) -> dict:
    """Every acknowledged id (of every file) is in the dump of the surviving table."""
    present = {int(x) for x in read_text(present_file).split()}
    all_acked = {}
    for f in acked_files:
        all_acked.update(acked(f))
    lost = sorted(set(all_acked) - present)
    log(f"    {label}: {len(all_acked)} acknowledged rows, {len(present)} present, {len(lost)} lost")
    expect(all_acked, f"{label}: the writer got no row acknowledged")
    expect(not lost, f"{label}: {len(lost)} acknowledged rows lost, e.g. {lost[:20]}")
    return all_acked


MARIA_OLD_CNF = """[mysqld]
user = mysql
datadir = /var/lib/mysql-old
socket = /run/mysqld-old/mysqld.sock
pid-file = /run/mysqld-old/mysqld.pid
port = 3306
bind-address = 127.0.0.2
skip-name-resolve
server_id = 1
log_error = /var/lib/mysql-old/error.log
innodb_buffer_pool_size = 64M
"""
MARIA_OLD_SOCK = "/run/mysqld-old/mysqld.sock"
MARIA_NEW_SOCK = "/run/mysqld/mysqld.sock"

MARIA_OLD_UNIT = """[Unit]
Description=the old host's MariaDB (vm-tests: 127.0.0.2:3306, datadir on the OS disk)
After=network.target

[Service]
Type=notify
User=mysql
ExecStart=/usr/sbin/mariadbd --defaults-file=/etc/mysql-old/my.cnf
RuntimeDirectory=mysqld-old
TimeoutSec=300

[Install]
WantedBy=multi-user.target
"""


def maria_old_setup(rows: int, log_bin: bool) -> str:
    """Bash: the old host's MariaDB (binary log on or off), database shop (orders: ROWS rows),
    bench.w for the writer, accounts dbhost (everything) and repl (REPLICATION SLAVE), password
    files in /root."""
    binlog = "log_bin = /var/lib/mysql-old/binlog\n" if log_bin else ""
    return f"""
mkdir -p /etc/mysql-old /usr/local/lib/systemd/system
cat >/etc/mysql-old/my.cnf <<'EOF'
{MARIA_OLD_CNF}{binlog}EOF
cat >/usr/local/lib/systemd/system/maria-old.service <<'EOF'
{MARIA_OLD_UNIT}EOF
mariadb-install-db --defaults-file=/etc/mysql-old/my.cnf --user=mysql --skip-test-db >/dev/null 2>&1
systemctl daemon-reload
systemctl enable --now maria-old.service
check "the old host's MariaDB runs on 127.0.0.2:3306" systemctl is-active maria-old.service
oldsql() {{ mariadb -S {MARIA_OLD_SOCK} "$@"; }}
oldsql -e "DELETE FROM mysql.global_priv WHERE User = ''; FLUSH PRIVILEGES"
for h in 127.0.0.% localhost; do
  oldsql -e "CREATE USER 'dbhost'@'$h' IDENTIFIED BY 'src-secret'; GRANT ALL PRIVILEGES ON *.* TO 'dbhost'@'$h'"
done
oldsql -e "CREATE USER 'repl'@'127.0.0.%' IDENTIFIED BY 'repl-secret'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.%'"
# The application's account (the writer): no READ_ONLY ADMIN, so read_only fences it.
oldsql -e "CREATE USER 'app'@'localhost'; GRANT SELECT, INSERT ON bench.* TO 'app'@'localhost'"
oldsql -e "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(40), note VARCHAR(255)) ENGINE=InnoDB; \\
  INSERT INTO shop.orders SELECT seq, CONCAT('item-', seq), REPEAT(MD5(seq), 4) FROM seq_1_to_{rows}; \\
  CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(60)) ENGINE=Aria; \\
  INSERT INTO shop.customers SELECT seq, CONCAT('customer-', seq) FROM seq_1_to_2000; \\
  CREATE DATABASE bench; CREATE TABLE bench.w (id BIGINT PRIMARY KEY, t DOUBLE, pad VARCHAR(100)) ENGINE=InnoDB"
printf 'src-secret\\n' >/root/src.pw; printf 'repl-secret\\n' >/root/repl.pw
chmod 600 /root/*.pw
"""


# Checksums of the static tables (bench.w changes all the time).
MYSUM = r"""#!/bin/bash
# mysum SOCKET: CHECKSUM TABLE of shop's tables on the server at SOCKET.
set -euo pipefail
mariadb -S "$1" -N -B -e "CHECKSUM TABLE shop.orders, shop.customers EXTENDED"
"""


def maria_tools() -> str:
    return f"""
cat >/usr/local/bin/mysum <<'EOF_SUM'
{MYSUM}EOF_SUM
chmod 755 /usr/local/bin/mysum
"""
