"""Host-side assertions over dbhost's JSON output (pure functions, self-tested in selftest.py
against good and deliberately broken inventories, so a wrong detection cannot pass)."""

from __future__ import annotations


class CheckError(AssertionError):
    pass


def _fail(msg: str):
    raise CheckError(msg)


def _matches(disk: dict, serial: str) -> bool:
    if disk.get("serial") == serial:
        return True
    return any(x.endswith("_" + serial) or x.endswith("-" + serial) for x in disk.get("by_id") or [])


def _table(inv: dict) -> str:
    rows = []
    for d in inv.get("disks", []):
        role = (d.get("role") or {}).get("kind")
        refs = ",".join(r.get("reason", "?") for r in d.get("refusals") or []) or "-"
        rows.append(f"{d.get('name')}: role={role} lun={d.get('lun')} serial={d.get('serial')} "
                    f"size={d.get('size_bytes')} refusals={refs}")
    return "\n      ".join(rows)


def find_disk(inv: dict, serial: str) -> dict:
    hits = [d for d in inv.get("disks", []) if _matches(d, serial)]
    if len(hits) != 1:
        _fail(f"expected exactly one disk with serial {serial!r}, found {len(hits)}:\n      {_table(inv)}")
    return hits[0]


def check_inventory(inv: dict, *, os_serial: str, data: dict, platform: str = "qemu"):
    """Assert the classification of a QEMU guest.

    data: serial -> {"lun": int|None, "size": bytes, "transport": "scsi"|"nvme"|"virtio"}.
    The OS disk must be refused as the OS disk; exactly the `data` disks are candidates (empty
    refusals, role data, the given LUN and size); every other device is refused."""
    osd = find_disk(inv, os_serial)
    if (osd.get("role") or {}).get("kind") != "os":
        _fail(f"OS disk {osd.get('name')} has role {osd.get('role')}, expected os")
    if not any(r.get("reason") == "os_disk" for r in osd.get("refusals") or []):
        _fail(f"OS disk {osd.get('name')} is not refused as os_disk: {osd.get('refusals')}")
    check_candidates(inv, data, platform)
    expected = {find_disk(inv, s).get("name") for s in data}
    candidates = {d.get("name") for d in inv.get("disks", []) if not d.get("refusals")}
    if candidates != expected:
        _fail(f"data candidates are {sorted(candidates)}, expected {sorted(expected)}:\n      {_table(inv)}")


def check_candidates(inv: dict, data: dict, platform: str = "qemu"):
    """Assert that the disks with these serials are data candidates with exactly the given
    attributes (micro guests: no OS disk, and other claims' disks in the same boot are not
    looked at).

    data: serial -> {"lun", "size", "transport", "logical_block_size", "read_only", ...}: every
    key given must equal the inventory's field of that name ("size" is size_bytes)."""
    if inv.get("schema") != 1:
        _fail(f"inventory schema is {inv.get('schema')!r}, expected 1")
    if inv.get("platform") != platform:
        _fail(f"platform is {inv.get('platform')!r}, expected {platform!r}")
    for serial, want in data.items():
        d = find_disk(inv, serial)
        name = d.get("name")
        if d.get("refusals"):
            _fail(f"data disk {name} (serial {serial}) is refused: {d.get('refusals')}")
        if (d.get("role") or {}).get("kind") != "data":
            _fail(f"data disk {name} (serial {serial}) has role {d.get('role')}, expected data")
        for k, v in want.items():
            got = d.get("size_bytes" if k == "size" else k)
            if got != v:
                _fail(f"data disk {name} (serial {serial}) has {k} {got!r}, expected {v!r}")


def check_refused(inv: dict, serial: str, reason: str, **fields):
    """Assert that the disk with this serial is refused for `reason` (a Refusal's snake_case
    name), with the given fields on that refusal (e.g. kind="xfs")."""
    d = find_disk(inv, serial)
    hits = [r for r in d.get("refusals") or [] if r.get("reason") == reason
            and all(r.get(k) == v for k, v in fields.items())]
    if not hits:
        _fail(f"disk {d.get('name')} (serial {serial}) is not refused as {reason} {fields or ''}: "
              f"refusals {d.get('refusals')}, signatures {d.get('signatures')}")
