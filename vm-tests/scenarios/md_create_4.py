"""md-create-4: dbhost md create over 4 virtio-scsi LUN disks with mdadm absent, then the same
disks under the mdadm-equipped image (the oracle: its udev rules assemble the array, `mdadm
--detail`/`--examine` must agree with what dbhost made).

boot 1 (base image, no mdadm): create; /proc/mdstat, sysfs, array sector 1024*i found on member i
        at data_offset 4096 (MD.md §6); stop it. Then, on six more disks (LUN 4-9) in the same
        boot, md-stale-unequal (md_stale_unequal.py): saves that scenario's own boot.
host:   mdadm --examine on the 4 images: checksum correct, raid0, 512K, roles 0..3, AAAA;
        md-stale-unequal's host checks; its disks are detached.
boot 2 (mdadm image, same disks): exactly one array, /dev/md/data; mdadm --detail: raid0, 4
        devices, 512K, clean, Name any:data, the UUID dbhost printed; the data is there;
        `dbhost assemble` leaves mdadm's array alone (already running, exit 0)."""

import re

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Boot, Disk, Host, Scenario, expect, on_guest, read_text  # noqa: E402
from mdlib import DATA_1G, OFF_1G, examine_ok, job, mdadm_root  # noqa: E402
from md_stale_unequal import BODY as STALE_UNEQUAL  # noqa: E402
from md_stale_unequal import DISKS as STALE_DISKS  # noqa: E402
from md_stale_unequal import host_checks as stale_unequal_host_checks  # noqa: E402

SERIALS = [f"md4-{i}" for i in range(4)]
SIZE_SECTORS = 4 * DATA_1G

BOOT1 = job(f"""
D=(); K=()
for s in {' '.join(SERIALS)}; do d=$(dev_of $s); D+=("$d"); K+=("$(kname "$d")"); done
check "4 data disks found by serial" test -b "${{D[0]}}" -a -b "${{D[1]}}" -a -b "${{D[2]}}" -a -b "${{D[3]}}"
check "mdadm absent" sh -c '! command -v mdadm'
run create $DBHOST md create --name data "${{D[@]}}"
check "md create exit 0" is "$(rc_of create)" 0
check "/dev/md/data -> md127" is "$(readlink /dev/md/data)" ../md127
check "mdstat members" has "$(cat /proc/mdstat)" "md127 : active raid0 ${{K[3]}}[3] ${{K[2]}}[2] ${{K[1]}}[1] ${{K[0]}}[0]"
check "mdstat size/chunk" has "$(cat /proc/mdstat)" "$(({SIZE_SECTORS} / 2)) blocks super 1.2 512k chunks"
check "md/level" is "$(mdattr md127 level)" raid0
check "md/raid_disks" is "$(mdattr md127 raid_disks)" 4
check "md/chunk_size" is "$(mdattr md127 chunk_size)" 524288
check "md/metadata_version" is "$(mdattr md127 metadata_version)" 1.2
check "md/array_state" is "$(mdattr md127 array_state)" clean
check "array size" is "$(cat /sys/block/md127/size)" {SIZE_SECTORS}
check "optimal_io_size = 4 chunks" is "$(cat /sys/block/md127/queue/optimal_io_size)" 2097152
for i in 0 1 2 3; do
  check "slot of ${{K[$i]}}" is "$(mdattr md127 dev-${{K[$i]}}/slot)" $i
  check "offset of ${{K[$i]}}" is "$(mdattr md127 dev-${{K[$i]}}/offset)" {OFF_1G}
  write_pat /dev/md/data $((1024 * i)) $i
  write_pat /dev/md/data $((4096 + 1024 * i)) $((i + 4))
done
for i in 0 1 2 3; do
  check "array sector $((1024 * i)) on member $i at data_offset" read_is_pat "${{D[$i]}}" {OFF_1G} $i
  check "array sector $((4096 + 1024 * i)) on member $i at data_offset+1024" read_is_pat "${{D[$i]}}" $(({OFF_1G} + 1024)) $((i + 4))
done
run stop4 $DBHOST md stop data
check "md stop data exit 0" is "$(rc_of stop4)" 0
sync
""" + STALE_UNEQUAL)

BOOT2 = job(f"""
check "mdadm installed (oracle image)" command -v mdadm
udevadm settle --timeout=60
check "exactly one array" is "$(grep -c '^md' /proc/mdstat)" 1
check "/dev/md/data exists" test -b /dev/md/data
DT=$(mdadm --detail /dev/md/data 2>&1 | tr -s ' ')
echo "$DT"
check "detail: raid0" has "$DT" "Raid Level : raid0"
check "detail: 4 devices" has "$DT" "Raid Devices : 4"
check "detail: chunk" has "$DT" "Chunk Size : 512K"
check "detail: layout" has "$DT" "Layout : original"
check "detail: clean" hasre "$DT" "State : clean *$"
check "detail: name" has "$DT" "Name : any:data"
check "detail: uuid = dbhost's" has "$DT" "UUID : $(cat uuid)"
check "detail: array size" has "$DT" "Array Size : $(({SIZE_SECTORS} / 2)) "
for i in 0 1 2 3; do
  d=$(dev_of md4-$i)
  check "detail: $(kname $d) active sync role $i" hasre "$DT" " $i 8 [0-9]+ $i active sync /dev/$(kname $d)"
  EX=$(mdadm --examine "$d" 2>&1 | tr -s ' ')
  check "guest examine $i: checksum" hasre "$EX" "Checksum : [0-9a-f]+ - correct"
  check "guest examine $i: role" has "$EX" "Device Role : Active device $i"
  check "array sector $((1024 * i)) still there" read_is_pat /dev/md/data $((1024 * i)) $i
done
run assemble $DBHOST assemble
check "dbhost assemble exit 0" is "$(rc_of assemble)" 0
check "dbhost assemble: already running" has "$(out_of assemble)" "data: already running"
""")


def examine_all(run):
    md4 = [d for d in run.disks if d.serial in SERIALS]
    for i, d in enumerate(md4):
        examine_ok(run.disk_path(d), role=i, n=4, name="data", data_size=DATA_1G)
    stale_unequal_host_checks(run)
    run.disks = md4  # boot 2 sees only the 4 members
    # hand dbhost's UUID (mdadm form) to the next boot's job
    m = re.search(r"\(([0-9a-f:-]{35,36})\)", read_text(run.out(1) / "create.out"))
    expect(m, f"no UUID in dbhost's create output: {read_text(run.out(1) / 'create.out')!r}")
    h = re.sub(r"[:-]", "", m.group(1))
    (run.dir / "job" / "uuid").write_text(":".join(h[i:i + 8] for i in range(0, 32, 8)) + "\n")
    mdadm_root(run)


SCENARIO = Scenario(
    name="md-create-4",
    description="md RAID-0 over 4 LUN disks without mdadm; data placement; mdadm image's --detail/--examine agree; + md-stale-unequal",
    disks=[Disk(f"d{i}", size="1G", bus="scsi", lun=i, serial=s) for i, s in enumerate(SERIALS)]
    + [Disk(d.name, size=d.size, bus=d.bus, lun=d.lun + 4, serial=d.serial) for d in STALE_DISKS],
    mask=["mariadb.service", "postgresql.service"],
    memory_mb=1024,  # no database runs here; a smaller guest boots faster under TCG
    # By name: in the suite, the micro tier carries these claims on both kernels (md-raid0-4-disks,
    # md-members-reordered, ...); this full boot and its variants cover the cloud kernels.
    suite=False,
    steps=[
        Boot(job=BOOT1),
        Host(examine_all),
        Boot(job=BOOT2),
    ],
)

# The same claims on the other kernels users boot: Debian 13's 6.12 (trixie image, its own mdadm
# for boot 2) and Debian's cloud flavour (6.1; the bed's shares go over virtiofs there). By name
# only: full boots cost ~150-220 s each; in CI every md scenario is to run on each kernel in the
# micro tier (issue 16), where a boot costs seconds.
VARIANTS = [on_guest(SCENARIO, image="trixie", suite=False), on_guest(SCENARIO, kernel="cloud", suite=False)]
