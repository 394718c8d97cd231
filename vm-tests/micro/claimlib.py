"""Pieces the micro claims share: profiles that select a claim's own disks, and host-side reads
of dbhost's JSON results."""

from __future__ import annotations

from harness import expect, read_json, read_text

PROFILE = """version = 1
description = "micro claim: {what}"

[disks]
platform = "qemu"
allowed-cache-modes = ["none"]
assume-cache-mode = "none"
select = "match"
serial = [{serials}]
min-size = "{min_size}"
expected-count = {count}
wait-timeout = "{wait}"

[array]
level = "{level}"
{chunk}name = "{name}"

[filesystem]
type = "{fs}"
label = "{name}"
mount-point = "/mnt/{name}"

[database]
engine = "none"

[tuning]
enabled = false
"""


def profile(name: str, serials: list, *, what: str = "", level: str = "raid0", fs: str = "xfs", count=None,
            min_size: str = "16M", wait: str = "0s", chunk: str | None = "512K") -> tuple:
    """(file name, TOML) of a storage-only profile (engine none, tuning off) over exactly the
    disks with these serials (globs allowed). `name` is the array name, the filesystem label and
    the mount point /mnt/NAME, so it must fit an XFS label (12 characters)."""
    assert len(name) <= 12, f"{name!r} is longer than an XFS label may be"
    text = PROFILE.format(what=what or name, serials=", ".join(f'"{s}"' for s in serials), min_size=min_size,
                          count=count if count is not None else len(serials), wait=wait,
                          level=level, chunk=f'chunk = "{chunk}"\n' if level != "none" and chunk else "",
                          name=name, fs=fs)
    return f"micro-{name}.toml", text


def profile_path(fname: str) -> str:
    return f"/usr/local/share/dbhost/profiles/{fname}"


def rc_is(out, name: str, want: int):
    rc = int(read_text(out / f"{name}.rc").strip())
    expect(rc == want, f"{name} exited {rc}, expected {want}: {read_text(out / f'{name}.err')[-800:]}"
                       f"{read_text(out / f'{name}.out')[-800:]}")


def detect_ok(out, name: str = "detect") -> dict:
    rc_is(out, name, 0)
    return read_json(out / f"{name}.out")
