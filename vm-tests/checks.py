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
    if inv.get("schema") != 1:
        _fail(f"inventory schema is {inv.get('schema')!r}, expected 1")
    if inv.get("platform") != platform:
        _fail(f"platform is {inv.get('platform')!r}, expected {platform!r}")
    osd = find_disk(inv, os_serial)
    if (osd.get("role") or {}).get("kind") != "os":
        _fail(f"OS disk {osd.get('name')} has role {osd.get('role')}, expected os")
    if not any(r.get("reason") == "os_disk" for r in osd.get("refusals") or []):
        _fail(f"OS disk {osd.get('name')} is not refused as os_disk: {osd.get('refusals')}")
    for serial, want in data.items():
        d = find_disk(inv, serial)
        name = d.get("name")
        if d.get("refusals"):
            _fail(f"data disk {name} (serial {serial}) is refused: {d.get('refusals')}")
        if (d.get("role") or {}).get("kind") != "data":
            _fail(f"data disk {name} (serial {serial}) has role {d.get('role')}, expected data")
        if "lun" in want and d.get("lun") != want["lun"]:
            _fail(f"data disk {name} (serial {serial}) has lun {d.get('lun')}, expected {want['lun']}")
        if "size" in want and d.get("size_bytes") != want["size"]:
            _fail(f"data disk {name} (serial {serial}) has size {d.get('size_bytes')}, expected {want['size']}")
        if "transport" in want and d.get("transport") != want["transport"]:
            _fail(f"data disk {name} (serial {serial}) has transport {d.get('transport')}, "
                  f"expected {want['transport']}")
    expected = {find_disk(inv, s).get("name") for s in data}
    candidates = {d.get("name") for d in inv.get("disks", []) if not d.get("refusals")}
    if candidates != expected:
        _fail(f"data candidates are {sorted(candidates)}, expected {sorted(expected)}:\n      {_table(inv)}")
