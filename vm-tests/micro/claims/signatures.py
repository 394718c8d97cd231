"""Refusal claims, one per on-disk signature kind dbhost probes: a data disk carrying it (written
by the format's real tool: micro/corpus.py on the host, mdadm in the guest for md superblocks)
is refused by detect, plan, apply and md create, each naming the disk, and is unchanged byte for
byte afterwards (so is the blank partner disk md create was given with it)."""

from harness import MIB, Disk, Host, expect
from mdlib import sha256
from micro.corpus import KINDS, NOT_YET
from micro.tier import Claim, MBoot
from checks import CheckError, check_refused, find_disk
from micro.claimlib import detect_ok, profile

def one_disk_profile(serial: str, label: str) -> tuple:
    """A profile that selects exactly the disk with this serial (no array, XFS at /mnt/LABEL)."""
    return profile(label, [serial], level="none", what=f"the disk with serial {serial} alone")


REFUSE = """
S=$(dev_of {serial}); P=$(dev_of {partner})
check "the disk and its blank partner are attached" test -b "$S" -a -b "$P"
{before}
dbhost detect --output json >"$VMTEST_OUT/detect.out" 2>"$VMTEST_OUT/detect.err"; echo $? >"$VMTEST_OUT/detect.rc"
check "detect exit 0" is "$(cat "$VMTEST_OUT/detect.rc")" 0
echo "$(kname "$S")" >"$VMTEST_OUT/kname"
run plan $DBHOST plan --profile /usr/local/share/dbhost/profiles/{profile} --output json
check "plan refuses (exit 3)" is "$(rc_of plan)" 3
run apply $DBHOST apply --profile /usr/local/share/dbhost/profiles/{profile} --yes
check "apply refuses (exit 3)" is "$(rc_of apply)" 3
check "apply names the disk" has "$(out_of apply)" "$(kname "$S")"
{why_check}
check "apply made no filesystem mount" sh -c '! mountpoint -q /mnt/{label}'
run mdcreate $DBHOST md create --name {label} "$S" "$P"
check "md create refuses (exit 3)" is "$(rc_of mdcreate)" 3
check "md create names the disk" has "$(out_of mdcreate)" "$(kname "$S")"
check "no array {label}" test ! -e /dev/md/{label}
{after}
"""

# What apply's refusal must say on the disk's own line: what to do (--wipe) for data dbhost may
# clear, or why nothing would help: a partition table with partitions (dbhost never deletes
# partitions) or a member of a whole foreign array (adopted or left alone, never wiped).
WHY = '''check "apply's line for the disk says why and what to do" sh -c 'echo "$1" | grep -qE -- "--wipe|has partitions|member of md array"' _ "$(out_of apply | grep -E "^ *$(kname "$S") ")"'''

# md superblocks of the four metadata versions, made by mdadm over the disk and its partner (a
# RAID-1: 0.90 metadata cannot carry a RAID-0 layout, and foreign arrays are mostly mirrors).
MDADM_SIG = """
MDADM_NO_UDEV=1 mdadm --create /dev/md/{label} --run --level=1 --raid-devices=2 --assume-clean \\
  --metadata={version} "$S" "$P" >"$VMTEST_OUT/mdadm-create.txt" 2>&1
check "mdadm --create --metadata={version}" test $? = 0
mdadm --stop /dev/md/{label} >>"$VMTEST_OUT/mdadm-create.txt" 2>&1
check "mdadm --stop" test $? = 0
hs=$(sha256sum <"$S"); hp=$(sha256sum <"$P")
"""
MDADM_UNCHANGED = """
check "the md member is unchanged, byte for byte" is "$(sha256sum <"$S")" "$hs"
check "its partner is unchanged, byte for byte" is "$(sha256sum <"$P")" "$hp"
"""


def detect_sees_md(out, serial: str, kind: str):
    """An md member is not refused by detect (plan decides: adopt or refuse); detect must list
    the superblock."""
    d = find_disk(detect_ok(out), serial)
    kinds = [s.get("kind") for s in d.get("signatures") or []]
    expect(kind in kinds, f"detect lists no {kind} superblock on {d.get('name')}: signatures {kinds}")


def detect_refuses(out, serial: str, wants: list):
    inv = detect_ok(out)
    errors = []
    for w in wants:
        try:
            if w[0] == "holds_signature":
                check_refused(inv, serial, "holds_signature", kind=w[1])
            else:
                check_refused(inv, serial, w[0])
            return
        except CheckError as e:
            errors.append(str(e))
    raise CheckError(" / ".join(errors))


def host_kind(kind: str) -> Claim:
    size, writer, wants = KINDS[kind]
    label = ("sig" + "".join(c for c in kind if c.isalnum()))[:12]  # an XFS label has at most 12
    serial, partner = f"sig-{kind}"[:20], f"sigp-{kind}"[:20]
    sig = Disk("sig", size=size, serial=serial)
    blank = Disk("blank", size=32 * MIB, serial=partner)
    pname, ptext = one_disk_profile(serial, label)
    hashes = {}

    def write(run):
        writer(run.disk_path(sig))
        hashes["sig"] = sha256(run.disk_path(sig))
        hashes["blank"] = sha256(run.disk_path(blank))

    def check(run, out):
        detect_refuses(out, serial, wants)
        expect(sha256(run.disk_path(sig)) == hashes["sig"], f"the {kind} disk changed although it was refused")
        expect(sha256(run.disk_path(blank)) == hashes["blank"], "the blank partner disk changed")

    return Claim(
        name=f"refuse-{kind}",
        proves=f"a data disk holding {kind} (made by its own tool) is refused by detect, plan, apply and md "
               f"create, and stays byte-for-byte unchanged",
        disks=[sig, blank], profiles={pname: ptext}, suite=kind not in NOT_YET,
        steps=[Host(write), MBoot(job=REFUSE.format(serial=serial, partner=partner, profile=pname, label=label,
                                                    before="", after="", why_check=WHY), check=check)])


def md_kind(version: str) -> Claim:
    kind = f"md-{version}"
    label = "sigmd" + version.replace(".", "")
    serial, partner = f"sig-{kind}", f"sigp-{kind}"
    pname, ptext = one_disk_profile(serial, label)
    job = REFUSE.format(serial=serial, partner=partner, profile=pname, label=label,
                        before=MDADM_SIG.format(label=label + "x", version=version), after=MDADM_UNCHANGED,
                        why_check=WHY)
    return Claim(
        name=f"refuse-{kind}",
        proves=f"a data disk carrying an mdadm-made {version} superblock of another array is refused by detect, "
               f"plan, apply and md create, and stays byte-for-byte unchanged",
        disks=[Disk("sig", size=32 * MIB, serial=serial), Disk("blank", size=32 * MIB, serial=partner)],
        profiles={pname: ptext}, md=True,
        steps=[MBoot(job=job, check=lambda run, out: detect_sees_md(out, serial, kind))])


def claims() -> list:
    return [host_kind(k) for k in KINDS] + [md_kind(v) for v in ("0.90", "1.0", "1.1", "1.2")]
