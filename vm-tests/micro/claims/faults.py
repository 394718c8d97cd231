"""Fault injection without a database: a member's writes start failing (an I/O error, or the disk
turning read-only) while dbhost writes superblocks or makes the filesystem. Each time the command
stops with an error naming the step and the device, reports nothing done that is not, and a
re-run after the fault is gone converges (a third run changes nothing).

The faulty member is served through nbdkit's error filter (harness Disk.fault); the job decides
the exact moment with fault_on/fault_off, and DBHOST_FAULT=hold@STEP:before makes apply wait at
a step while the job arms the fault."""

from harness import MIB, Disk
from micro.claimlib import profile, profile_path
from micro.claims.md import examine_all
from micro.tier import Claim, MBoot

SUPERBLOCK = """
F=(); for i in 0 1 2; do F+=("$(dev_of sbfault-$i)"); done
bad=$(kname "${F[2]}")
fault_on sbfault-2 write
run create $DBHOST md create --name sbfault "${F[@]}"
check "md create fails" isnt "$(rc_of create)" 0
check "the error names the failing member" has "$(out_of create)" "$bad"
check "the error names the superblock write" hasre "$(out_of create)" "superblock"
check "no array is left running" test ! -e /dev/md/sbfault
check "no member is held by an md device" sh -c "! ls /sys/block/$(kname "${F[0]}")/holders/ /sys/block/$(kname "${F[1]}")/holders/ /sys/block/$bad/holders/ | grep -q md"
check "nothing reported created" hasnt "$(out_of create)" "created/started"
fault_off sbfault-2
run create2 $DBHOST md create --name sbfault "${F[@]}"
check "re-run after the fault is gone: exit 0" is "$(rc_of create2)" 0
check "re-run: array clean" is "$(mdattr "$(kname /dev/md/sbfault)" array_state)" clean
run create3 $DBHOST md create --name sbfault "${F[@]}"
check "third run: unchanged" has "$(out_of create3)" "unchanged:"
run stop $DBHOST md stop sbfault
"""


def at_step(name: str, step: str, serial: str, mode: str) -> str:
    """apply held at STEP while the job turns on the fault of SERIAL, then released; then the
    fault is removed and apply run again (it must converge), and a third time (nothing to do)."""
    p = profile_path(f"micro-{name}.toml")
    return f"""
export DBHOST_FAULT=hold@{step}:before DBHOST_FAULT_MARK=/run/{name}.hold
$DBHOST apply --profile {p} --yes >"$VMTEST_OUT/apply.out" 2>"$VMTEST_OUT/apply.err" &
pid=$!
check "apply reached {step}" held /run/{name}.hold 300 $pid
bad=$(kname "$(dev_of {serial})")
fault_on {serial} {mode}
rm -f /run/{name}.hold
wait $pid; echo $? >"$VMTEST_OUT/apply.rc"
unset DBHOST_FAULT DBHOST_FAULT_MARK
check "apply fails" isnt "$(rc_of apply)" 0
check "apply names the step" has "$(out_of apply)" "step {step}"
check "apply names the failing device" hasre "$(out_of apply)" "$bad|/dev/md"
check "apply mounted nothing" sh -c '! mountpoint -q /mnt/{name}'
run status $DBHOST --output json status
check "status: {step} failed" has "$(out_of status | tr -d ' \\n')" '"{step}"'
fault_off {serial}
run apply2 $DBHOST apply --profile {p} --yes
check "re-run after the fault is gone: exit 0" is "$(rc_of apply2)" 0
check "re-run: mounted" mountpoint -q /mnt/{name}
run apply3 $DBHOST --output json apply --profile {p} --yes
check "third run: changed nothing" has "$(out_of apply3 | tr -d ' ')" '"changed":0'
umount /mnt/{name}
"""


def apply_fault(name: str, proves: str, step: str, errno: str, mode: str = "write") -> Claim:
    disks = [Disk(f"f{i}", size=600 * MIB, serial=f"{name}-{i}", fault=errno if i == 1 else None)
             for i in range(2)]
    prof = profile(name, [d.serial_() for d in disks], what=proves)
    return Claim(name=f"fault-{name}", proves=proves, disks=disks, profiles=dict([prof]),
                 steps=[MBoot(job=at_step(name, step, disks[1].serial_(), mode), timeout=400)])


def claims() -> list:
    sb = [Disk(f"s{i}", size=64 * MIB, serial=f"sbfault-{i}", fault="EIO" if i == 2 else None) for i in range(3)]
    return [
        Claim(name="fault-superblock-write-error",
              proves="an I/O error on one member while md create writes the superblocks: exit non-zero naming the "
                     "member, no array left, nothing reported created; a re-run after the fault converges",
              disks=sb, md=True,
              steps=[MBoot(job=SUPERBLOCK, check=lambda run, out: examine_all(sb, "sbfault")(run))]),
        apply_fault("mkfsio", "an I/O error on a member during apply's mkfs: apply stops at fs.mkfs naming the "
                              "device, mounts nothing; a re-run after the fault converges", "fs.mkfs", "EIO"),
        apply_fault("rodisk", "a member turns read-only (every write refused, EPERM) before apply writes the "
                              "superblocks: apply stops at md.array naming the device; a re-run once it is "
                              "writable converges", "md.array", "EPERM"),
    ]
