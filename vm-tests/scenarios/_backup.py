"""Shared pieces of the backup scenarios (not a scenario: the leading underscore).

The object-store servers run on the host's loopback (scripts/backup-servers.py, started by
scripts/vm-test.sh, which exports DBHOST_AZURITE_PORT / DBHOST_S3_PORT). A guest reaches one of
them through its single guestfwd rule (Scenario.guestfwd): GUEST_IP:PORT inside the guest is
127.0.0.1:HOST_PORT on the host, and a name in the guest's /etc/hosts points there, so dbhost's
own resolver is on the path too.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from harness import REPO, ScenarioFailure, expect, read_text

GUEST_IP = "10.0.2.100"
SERVERS = REPO / "scripts" / "backup-servers.py"
# A prefix per harness run: servers outlive a scenario run, backups of an earlier run must not
# count as this run's.
RUN_TOKEN = time.strftime("%Y%m%d%H%M%S")


def profile(description: str, label: str, engine: str, datadir: str, backup: str) -> str:
    """A profile for one data disk (serial data*) -> XFS at /datadrive -> ENGINE, with BACKUP
    (the [backup] sections) appended; tuning off (not what these scenarios are about)."""
    return f"""version = 1
description = "{description}"

[disks]
platform = "qemu"
allowed-cache-modes = ["none"]
assume-cache-mode = "none"
select = "match"
serial = ["data*"]
min-size = "128M"
expected-count = 1

[array]
level = "none"

[filesystem]
type = "xfs"
label = "{label}"
mount-point = "/datadrive"

[database]
engine = "{engine}"
datadir = "{datadir}"

[tuning]
enabled = false

{backup}"""


def host_port(var: str) -> int:
    v = os.environ.get(var)
    if not v:
        raise ScenarioFailure(f"{var} is not set: the backup scenarios need the object-store servers "
                              f"(scripts/vm-test.sh starts them; by hand: python3 scripts/backup-servers.py start DIR)")
    return int(v)


def guestfwd(var: str, guest_port: int):
    """Scenario.guestfwd for the server whose host port is in $VAR. A `cmd:` target: QEMU runs
    socat for each guest connection (a `tcp:` target is one chardev connection made when QEMU
    starts, shared by every guest connection, and broken once the server closes it)."""
    return lambda: f"tcp:{GUEST_IP}:{guest_port}-cmd:socat STDIO TCP:127.0.0.1:{host_port(var)}"


def servers(*args: str):
    p = subprocess.run([sys.executable, str(SERVERS), *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise ScenarioFailure(f"backup-servers.py {' '.join(args)}: {p.stderr[-800:]}")


def net_job(name: str) -> str:
    """Bash: bring up the guest's one NIC (no DHCP needed on QEMU's user network) and name the
    forwarded address."""
    return f"""
nic=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
ip link set lo up
ip link set "$nic" up && ip addr add 10.0.2.15/24 dev "$nic"
echo "{GUEST_IP} {name}" >>/etc/hosts
check "the backup server's name resolves in the guest" getent hosts {name}
"""


def secrets_job(lines: str) -> str:
    """Bash: the credentials file the profile names (mode 0600, as dbhost requires)."""
    return f"""
mkdir -p /etc/dbhost
( umask 077; printf '%s\\n' {lines} >/etc/dbhost/backup.env )
"""


def new_vm(run, instance_id: str, hostname: str):
    """The next boot is a new VM: the original OS image and blank data disks of the same shape."""
    run.fresh_os(instance_id, hostname)
    for d in run.disks:
        run.create_disk(d)


def stdout_id(out: Path, name: str) -> str:
    """The backup id `dbhost backup` printed (text mode: the id alone on stdout)."""
    ids = [l.strip() for l in read_text(out / f"{name}.out").splitlines() if l.strip()]
    expect(len(ids) == 1 and ids[0][:8].isdigit(), f"{name}: no backup id on stdout: {ids}")
    return ids[0]


def window(out: Path) -> tuple:
    """(rows before the backup under load began, rows after it ended) of the writer's table."""
    a, b = read_text(out / "writes-window.txt").split()
    return int(a), int(b)
