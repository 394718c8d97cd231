"""deb-install: the .deb (scripts/build-deb.sh, built on the host from the binary under test) installs
in a guest with dpkg -i: the binary runs from /usr/sbin, the man pages, completions, first-boot units
(not enabled) and profiles are where Debian expects them, and dpkg -r removes them again.

The guest image has no man-db (minbase), so `man -w` cannot run; the check reads the installed
page instead (the same file `man -w dbhost` would print).

In the suite, boot-detect's boot runs this job after its own (build_deb, JOB, check)."""

import os
import shutil
import subprocess

from harness import REPO, Boot, Host, Scenario, expect, read_text


def build_deb(run):
    p = subprocess.run(["bash", str(REPO / "scripts" / "build-deb.sh"), str(run.dir / "deb")],
                       env={**os.environ, "DBHOST_BIN": str(run.dbhost)},
                       capture_output=True, text=True)
    expect(p.returncode == 0, f"build-deb.sh failed:\n{p.stderr[-1500:]}")
    deb = p.stdout.strip().splitlines()[-1]
    shutil.copy2(deb, run.dir / "job" / "dbhost.deb")


JOB = r"""
o=$VMTEST_OUT
# The test image is minbase with `path-exclude=/usr/share/man/*` (dpkg.cfg.d): a later
# path-include lets dpkg install this package's man pages, as on a normal system.
echo 'path-include=/usr/share/man/man8/dbhost*' >/etc/dpkg/dpkg.cfg.d/zz-vmtest-dbhost-man
mkdir -p /usr/share/man/man8  # excluded directories were never created
check "dpkg -i" dpkg -i "$VMTEST_JOB/dbhost.deb"
dpkg -L dbhost >"$o/files.txt"
check "dbhost --version from /usr/sbin" sh -c '/usr/sbin/dbhost --version | grep -q "^dbhost "'
/usr/sbin/dbhost --version >"$o/version.txt" 2>&1
check "man page dbhost(8) installed" sh -c 'zcat /usr/share/man/man8/dbhost.8.gz | grep -q "^.TH dbhost 8"'
check "man page for generalize" test -s /usr/share/man/man8/dbhost-generalize.8.gz
check "bash completion" grep -q generalize /usr/share/bash-completion/completions/dbhost
check "first-boot units shipped" sh -c 'grep -q "ExecStart=/usr/sbin/dbhost generalize --first-boot pre-db" /usr/lib/systemd/system/dbhost-firstboot.service'
check "first-boot units not enabled by the package" sh -c '! systemctl is-enabled dbhost-firstboot.service'
systemctl daemon-reload
check "systemd sees the shipped units" sh -c 'systemctl cat dbhost-firstboot.service dbhost-firstboot-db.service >/dev/null'
check "profiles shipped" test -s /usr/share/dbhost/profiles/azure-mariadb.toml
check "profile from the package validates" /usr/sbin/dbhost profile check /usr/share/dbhost/profiles/azure-mariadb.toml
check "dpkg -r removes the binary" sh -c 'dpkg -r dbhost && ! test -e /usr/sbin/dbhost'
"""


def check(run, out):
    files = read_text(out / "files.txt")
    for f in ("/usr/sbin/dbhost", "/usr/share/man/man8/dbhost.8.gz", "/usr/lib/systemd/system/dbhost-firstboot.service"):
        expect(f in files, f"{f} not in the package: {files[:800]}")


SCENARIO = Scenario(
    name="deb-install",
    suite=False,  # in the suite inside boot-detect's boot
    description="the .deb from scripts/build-deb.sh: dpkg -i, binary, man pages, completions, units, profiles, dpkg -r",
    mask=["mariadb.service", "postgresql.service"],
    steps=[Host(build_deb), Boot(job=JOB, check=check, timeout=900)],
)
