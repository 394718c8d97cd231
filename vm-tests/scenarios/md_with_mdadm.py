"""md-with-mdadm: dbhost md create on the image with Debian's mdadm and its udev rules installed.
Its incremental assembly (64-md-raid-assembly.rules) sees the freshly written members; dbhost must
win without a race: exactly one array (no md127 duplicate, no inactive extra array), named
/dev/md/data, recorded in /run/mdadm/map. After a reboot (mdadm's udev rules and dbhost's boot
unit both try) there is still exactly one array under the same name.

boot 1: create, checks, wait for udev to settle, checks again, boot-unit, reboot.
boot 2: one array /dev/md/data, mdadm --detail Name any:data, the unit harmlessly did nothing
        (or assembled it first), `dbhost assemble` exit 0 already running."""

from harness import Boot, Disk, Host, Scenario
from mdlib import DATA_1G, examine_ok, job

A, B = "mdm-a", "mdm-b"

ONE_ARRAY = r"""
check "exactly one md array" is "$(grep -c '^md' /proc/mdstat)" 1
check "no inactive array" hasnt "$(cat /proc/mdstat)" "inactive"
check "/dev/md holds only data" is "$(ls /dev/md)" data
check "/dev/md/data -> md127" is "$(readlink /dev/md/data)" ../md127
check "array clean" is "$(mdattr md127 array_state)" clean
check "both members in it" is "$(ls -d /sys/block/md127/md/dev-* | wc -l)" 2
DT=$(mdadm --detail /dev/md/data 2>&1 | tr -s ' ')
echo "$DT"
check "detail: name" has "$DT" "Name : any:data"
check "detail: raid0 2 devices" has "$DT" "Raid Devices : 2"
check "detail: clean" hasre "$DT" "State : clean *$"
"""

BOOT1 = job(f"""
check "mdadm installed" command -v mdadm
check "mdadm udev rule installed" test -e /lib/udev/rules.d/64-md-raid-assembly.rules
D0=$(dev_of {A}); D1=$(dev_of {B})
run create $DBHOST md create --name data "$D0" "$D1"
check "md create exit 0" is "$(rc_of create)" 0
check "md create says created" has "$(out_of create)" "created/started array data"
{ONE_ARRAY}
udevadm trigger --action=change "$D0" "$D1"
udevadm settle --timeout=60
echo "after settle + change events:"; cat /proc/mdstat
{ONE_ARRAY}
check "map: md127 -> /dev/md/data" hasre "$(cat /run/mdadm/map)" "^md127 1.2 [0-9a-f:]+ /dev/md/data$"
run bootunit $DBHOST md boot-unit --expect data --wait 20s
check "boot-unit exit 0" is "$(rc_of bootunit)" 0
write_pat /dev/md/data 0 0
sync
next_boot reboot
""")

BOOT2 = job(f"""
udevadm settle --timeout=60
cat /proc/mdstat
{ONE_ARRAY}
check "unit ran fine" is "$(systemctl is-active dbhost-assemble.service)" active
check "data intact" read_is_pat /dev/md/data 0 0
run assemble $DBHOST assemble
check "dbhost assemble exit 0" is "$(rc_of assemble)" 0
check "dbhost assemble: already running" has "$(out_of assemble)" "data: already running (md127)"
""")


def examine_both(run):
    for i, d in enumerate(run.disks):
        examine_ok(run.disk_path(d), role=i, n=2, name="data", data_size=DATA_1G)


SCENARIO = Scenario(
    # By name: in the suite the micro claim md-create-beside-mdadm-udev proves the same on both
    # kernels in seconds.
    suite=False,
    name="md-with-mdadm",
    description="dbhost md create with mdadm + udev rules installed: no race, exactly one array, same name after reboot",
    variant="mdadm",
    disks=[Disk("a", size="1G", bus="scsi", lun=0, serial=A), Disk("b", size="1G", bus="scsi", lun=1, serial=B)],
    mask=["mariadb.service", "postgresql.service"],
    memory_mb=1024,  # no database runs here; a smaller guest boots faster under TCG
    steps=[Boot(job=BOOT1), Host(examine_both), Boot(job=BOOT2)],
)
