"""md claims: `dbhost md create` (no mdadm involved) makes a RAID-0 the kernel runs and mdadm
agrees with, whatever the number of members, their bus, their sector size and their sizes; the
data lands where MD.md §6 says; stale superblocks are refused; a mounted array is not stopped.

Oracles: the kernel (sysfs, /proc/mdstat), mdadm --detail/--examine in the guest, mdadm
--examine of the disk images on the host, and the expected data offset derived from MD.md
(mdlib.data_offset), never from dbhost's code."""

from harness import MIB, Disk, expect, size_bytes
from mdlib import data_offset, examine_ok
from micro.tier import Claim, MBoot

CHUNK = 1024  # sectors (512 KiB)


def geometry(disks: list) -> tuple:
    """(data offset, per-member data sizes, array sectors) for dbhost's RAID-0 over these disks
    (MD.md §1.7: the offset of the first member is used for all; raid0 rounds to whole chunks)."""
    sectors = [size_bytes(d.size) // 512 for d in disks]
    off = data_offset(sectors[0], CHUNK)
    data = [s - off for s in sectors]
    return off, data, sum(x // CHUNK * CHUNK for x in data)


def create_job(array: str, disks: list, *, lbs: int = 512, stop: bool = True) -> str:
    """Create the array over the disks (by serial, in role order) and check it from the kernel,
    the data placement, mdadm --detail/--examine and dbhost md examine; stop it at the end."""
    n = len(disks)
    off, _, total = geometry(disks)
    serials = " ".join(d.serial_() for d in disks)
    return f"""
D=(); K=()
for s in {serials}; do d=$(dev_of $s) || d=missing-$s; D+=("$d"); K+=("$(kname "$d")"); done
check "{n} members found by serial" test "$(ls -L "${{D[@]}}" 2>/dev/null | wc -l)" = {n}
check "mdadm is only an oracle here (no udev rules of its own)" test ! -e /usr/lib/udev/rules.d/64-md-raid-assembly.rules
run create $DBHOST md create --name {array} "${{D[@]}}"
check "md create exit 0" is "$(rc_of create)" 0
check "md create says created" has "$(out_of create)" "created/started array {array}"
md=$(kname /dev/md/{array})
check "/dev/md/{array} is an md device" hasre "$md" "^md[0-9]+$"
check "md/level" is "$(mdattr $md level)" raid0
check "md/raid_disks" is "$(mdattr $md raid_disks)" {n}
check "md/chunk_size" is "$(mdattr $md chunk_size)" 524288
check "md/metadata_version" is "$(mdattr $md metadata_version)" 1.2
check "md/array_state" is "$(mdattr $md array_state)" clean
check "array size (sectors)" is "$(cat /sys/block/$md/size)" {total}
check "array logical block size" is "$(cat /sys/block/$md/queue/logical_block_size)" {lbs}
check "optimal_io_size = {n} chunks" is "$(cat /sys/block/$md/queue/optimal_io_size)" {n * 524288}
slots=; offs=
for i in $(seq 0 {n - 1}); do
  slots+="$(mdattr $md dev-${{K[$i]}}/slot) "; offs+="$(mdattr $md dev-${{K[$i]}}/offset) "
  write_pat4k /dev/md/{array} $((524288 * i)) $i
done
check "member slots in role order" is "$slots" "$(seq -s ' ' 0 {n - 1}) "
check "every member's data offset" is "$offs" "$(for i in $(seq {n}); do printf '{off} '; done)"
sync
placed() {{ local i; for i in $(seq 0 {n - 1}); do read_is_pat4k "${{D[$i]}}" {off * 512} $i || return 1; done; }}
check "array chunk i lands on member i at the data offset, for every i" placed
UUID=$(mdadm --detail /dev/md/{array} 2>&1 | sed -n 's/ *UUID : //p')
DT=$(mdadm --detail /dev/md/{array} 2>&1 | tr -s ' ')
check "mdadm --detail: raid0" has "$DT" "Raid Level : raid0"
check "mdadm --detail: {n} devices" has "$DT" "Raid Devices : {n}"
check "mdadm --detail: chunk" has "$DT" "Chunk Size : 512K"
check "mdadm --detail: clean" hasre "$DT" "State : clean *$"
check "mdadm --detail: name" has "$DT" "Name : any:{array}"
check "mdadm --detail: the UUID dbhost printed" has "$(out_of create | tr -d ':-')" "$(echo "$UUID" | tr -d ':')"
# (mdadm --examine of every member runs on the host, over the disk images)
for i in 0 {n - 1}; do
  run examine$i $DBHOST md examine "${{D[$i]}}"
  check "dbhost md examine $i: role $i" has "$(out_of examine$i | tr -s ' ')" "Device Role : Active device $i"
  check "dbhost md examine $i: same UUID as mdadm" has "$(out_of examine$i)" "$UUID"
done
echo "$UUID" >"$VMTEST_OUT/uuid"
""" + (f"""
run stop $DBHOST md stop {array}
check "md stop exit 0" is "$(rc_of stop)" 0
check "array gone" sh -c "! grep -q '^$md ' /proc/mdstat"
""" if stop else "")


def examine_all(disks: list, array: str, extra: tuple = ()):
    """Host oracle: mdadm --examine of every member image (checksum, geometry, role)."""
    off, data, _ = geometry(disks)

    def fn(run):
        for i, d in enumerate(disks):
            examine_ok(run.disk_path(d), role=i, n=len(disks), name=array, offset=off, data_size=data[i],
                       extra=extra)
    return fn


def create_claim(name: str, proves: str, array: str, disks: list, lbs: int = 512, extra: tuple = ()) -> Claim:
    return Claim(name=name, proves=proves, disks=disks, md=True,
                 steps=[MBoot(job=create_job(array, disks, lbs=lbs),
                              check=lambda run, out: examine_all(disks, array, extra)(run))])


STALE = r"""
S0=$(dev_of stale-0); S1=$(dev_of stale-1); S2=$(dev_of stale-2)
# ends_hash DEV: hash of the first and last 4 MiB (where superblocks, GPT and fs magic live)
ends_hash() {
  { dd if="$1" bs=1M count=4 status=none
    dd if="$1" bs=1M skip=$(( $(blockdev --getsize64 "$1") / 1048576 - 4 )) status=none; } | sha256sum
}
run old $DBHOST md create --name staleold "$S0" "$S1"
check "create the old array: exit 0" is "$(rc_of old)" 0
run stop $DBHOST md stop staleold
check "stop the old array: exit 0" is "$(rc_of stop)" 0
h1=$(ends_hash "$S1"); h2=$(ends_hash "$S2")
run refuse $DBHOST md create --name stalenew "$S1" "$S2"
check "create over a stale member: exit 3" is "$(rc_of refuse)" 3
check "refusal names the array" has "$(out_of refuse)" "refusing to create array stalenew"
check "refusal names the old superblock" has "$(out_of refuse)" "any:staleold"
check "refusal names the disk" has "$(out_of refuse)" "$(kname "$S1")"
check "refusal tells about --wipe" has "$(out_of refuse)" "--wipe"
check "refusal wrote nothing to the stale member" is "$(ends_hash "$S1")" "$h1"
check "refusal wrote nothing to the blank disk" is "$(ends_hash "$S2")" "$h2"
check "no array after the refusal" sh -c "! grep -q stalenew /proc/mdstat; ! test -e /dev/md/stalenew"
run wipe $DBHOST md create --name stalenew --wipe "$S1" "$S2"
check "create --wipe exit 0" is "$(rc_of wipe)" 0
run ex1 $DBHOST md examine "$S1"
check "the wiped member carries the new array only" has "$(out_of ex1)" "any:stalenew"
check "the old superblock is gone from it" hasnt "$(out_of ex1)" "any:staleold"
check "new array: first MiB zero" is "$(head -c 1048576 /dev/md/stalenew | tr -d '\0' | wc -c)" 0
run stopnew $DBHOST md stop stalenew
check "stop the new array: exit 0" is "$(rc_of stopnew)" 0
"""


def stale_host(disks):
    def fn(run):
        d = {x.serial_(): run.disk_path(x) for x in disks}
        off, data, _ = geometry(disks)
        examine_ok(d["stale-0"], role=0, n=2, name="staleold", offset=off, data_size=data[0])
        t = examine_ok(d["stale-1"], role=0, n=2, name="stalenew", offset=off, data_size=data[1])
        expect("any:staleold" not in t, f"stale-1 still mentions the old array:\n{t}")
        examine_ok(d["stale-2"], role=1, n=2, name="stalenew", offset=off, data_size=data[2])
    return fn


BUSY_STOP = r"""
B0=$(dev_of busystop-0); B1=$(dev_of busystop-1)
run create $DBHOST md create --name busystop "$B0" "$B1"
check "create exit 0" is "$(rc_of create)" 0
mkdir -p /mnt/busystop && mkfs.ext4 -q -F /dev/md/busystop && mount /dev/md/busystop /mnt/busystop
check "the array is mounted" mountpoint -q /mnt/busystop
run stopbusy $DBHOST md stop busystop
check "stop while mounted: exit 3" is "$(rc_of stopbusy)" 3
check "stop while mounted: names the mount" has "$(out_of stopbusy)" "/mnt/busystop"
check "the array still runs" is "$(mdattr "$(kname /dev/md/busystop)" array_state)" clean
umount /mnt/busystop
run stop $DBHOST md stop busystop
check "stop after umount: exit 0" is "$(rc_of stop)" 0
"""

TWICE = r"""
T0=$(dev_of twice-0); T1=$(dev_of twice-1)
run create $DBHOST md create --name twice "$T0" "$T1"
check "first create exit 0" is "$(rc_of create)" 0
u1=$(mdattr "$(kname /dev/md/twice)" uuid)
run create2 $DBHOST md create --name twice "$T0" "$T1"
check "second create exit 0" is "$(rc_of create2)" 0
check "second create: unchanged" has "$(out_of create2)" "unchanged:"
check "same array (UUID)" is "$(mdattr "$(kname /dev/md/twice)" uuid)" "$u1"
run stop $DBHOST md stop twice
run create3 $DBHOST md create --name twice "$T0" "$T1"
check "create over its own stopped members: exit 0" is "$(rc_of create3)" 0
check "...assembles the same array" is "$(mdattr "$(kname /dev/md/twice)" uuid)" "$u1"
run stop2 $DBHOST md stop twice
"""


def scsi(prefix: str, n: int, size=64 * MIB, **kw) -> list:
    return [Disk(f"m{i}", size=size, bus="scsi", serial=f"{prefix}-{i}", **kw) for i in range(n)]


def claims() -> list:
    out = []
    for n in (2, 3, 4, 8, 16):
        out.append(create_claim(
            f"md-raid0-{n}-disks",
            f"dbhost md create over {n} virtio-scsi LUNs: the kernel runs it with the right geometry, array "
            f"chunk i lands on member i at the data offset, mdadm --detail/--examine agree",
            f"r{n}", scsi(f"mdn{n}", n)))
    out.append(create_claim(
        "md-raid0-nvme", "RAID-0 over NVMe namespaces: geometry, data placement, mdadm agrees", "rnvme",
        [Disk(f"n{i}", size=64 * MIB, bus="nvme", serial=f"mdnvme-{i}") for i in range(2)]))
    out.append(create_claim(
        "md-raid0-virtio-blk", "RAID-0 over virtio-blk disks: geometry, data placement, mdadm agrees", "rvirt",
        [Disk(f"v{i}", size=64 * MIB, bus="virtio", serial=f"mdvirt-{i}") for i in range(2)]))
    out.append(create_claim(
        "md-raid0-mixed-bus", "RAID-0 over a virtio-scsi LUN, an NVMe namespace and a virtio-blk disk", "rmix",
        [Disk("s", size=64 * MIB, bus="scsi", serial="mdmix-s"), Disk("n", size=64 * MIB, bus="nvme",
                                                                      serial="mdmix-n"),
         Disk("v", size=64 * MIB, bus="virtio", serial="mdmix-v")]))
    out.append(create_claim(
        "md-raid0-4k-sectors", "RAID-0 over 4096-byte-sector members (SCSI, NVMe, virtio-blk): the superblock "
        "at byte 4096 is accepted, the array has 4096-byte sectors", "r4k",
        [Disk("s", size=64 * MIB, bus="scsi", block_size=4096, serial="md4k-s"),
         Disk("n", size=64 * MIB, bus="nvme", block_size=4096, serial="md4k-n"),
         Disk("v", size=64 * MIB, bus="virtio", block_size=4096, serial="md4k-v")], lbs=4096))
    out.append(create_claim(
        "md-raid0-mixed-sectors", "RAID-0 over a 512-byte and a 4096-byte sector member: runs with 4096-byte sectors",
        "rmixs", [Disk("a", size=64 * MIB, bus="scsi", block_size=512, serial="mdmixs-512"),
                  Disk("b", size=64 * MIB, bus="scsi", block_size=4096, serial="mdmixs-4k")], lbs=4096))
    out.append(create_claim(
        "md-raid0-unequal-sizes", "3 members of 64, 128 and 128 MiB (two zones, the second of two devices: the "
        "case kernels refuse without a layout): runs, layout original, size = sum of the members' whole chunks",
        "runeq", [Disk("a", size=64 * MIB, serial="mdunq-0"), Disk("b", size=128 * MIB, serial="mdunq-1"),
                  Disk("c", size=128 * MIB, serial="mdunq-2")],
        extra=(" Feature Map : 0x1000 ", " Layout : original ")))
    stale = scsi("stale", 3)
    out.append(Claim(
        name="md-stale-superblock-refused",
        proves="a disk carrying another array's superblock is refused (exit 3, names disk, array and --wipe) and "
               "nothing is written; --wipe replaces it",
        disks=stale, md=True, steps=[MBoot(job=STALE, check=lambda run, out: stale_host(stale)(run))]))
    out.append(Claim(
        name="md-stop-refused-while-mounted",
        proves="dbhost md stop refuses a mounted array (exit 3, names the mount point) and it keeps running",
        disks=scsi("busystop", 2), md=True, steps=[MBoot(job=BUSY_STOP)]))
    out.append(Claim(
        name="md-create-idempotent",
        proves="md create run twice changes nothing; over its own stopped members it assembles the same array",
        disks=scsi("twice", 2), md=True, steps=[MBoot(job=TWICE)]))
    return out
