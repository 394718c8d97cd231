"""mdadm interop, both ways: an array mdadm made (with a filesystem and data on it) is found,
assembled and adopted by dbhost without mdadm's help and without a mkfs; an array dbhost made
is read by `mdadm --detail` and assembled by mdadm after a reboot with its data."""

from harness import MIB, Disk
from micro.claimlib import profile, profile_path, rc_is
from micro.claims.md import create_job, examine_all
from micro.tier import Claim, MBoot

LEGACY = [Disk(f"l{i}", size=128 * MIB, serial=f"legacy-{i}") for i in range(3)]
LEGACY_PROFILE = profile("legacy", ["legacy-*"], count=3, what="adopt the array mdadm made")

ADOPT = f"""
L=(); for i in 0 1 2; do L+=("$(dev_of legacy-$i)"); done
check "3 disks" test -b "${{L[0]}}" -a -b "${{L[1]}}" -a -b "${{L[2]}}"
MDADM_NO_UDEV=1 mdadm --create /dev/md/oldarr --run --level=0 --raid-devices=3 --metadata=1.2 --chunk=512 \\
  "${{L[@]}}" >"$VMTEST_OUT/mdadm-create.txt" 2>&1
check "mdadm --create (the array dbhost finds)" test $? = 0
UUID=$(mdadm --detail /dev/md/oldarr | sed -n 's/ *UUID : //p')
mkfs.xfs -q -L legacy /dev/md/oldarr && mkdir -p /mnt/old && mount /dev/md/oldarr /mnt/old
echo "written before dbhost came" >/mnt/old/proof && umount /mnt/old
FSUUID=$(blkid -s UUID -o value /dev/md/oldarr)
mdadm --stop /dev/md/oldarr >>"$VMTEST_OUT/mdadm-create.txt" 2>&1
check "mdadm --stop" test $? = 0
run plan $DBHOST plan --profile {profile_path(LEGACY_PROFILE[0])} --output json
check "plan: exit 0" is "$(rc_of plan)" 0
check "plan: adopt the array" has "$(out_of plan | tr -d ' \\n')" '"action":"adopt_array"'
check "plan: mdadm's array UUID" has "$(out_of plan | tr -d ':')" "$(echo "$UUID" | tr -d ':')"
check "plan: no mkfs" has "$(out_of plan | tr -d ' \\n')" '"mkfs":null'
run assemble $DBHOST assemble
check "dbhost assemble: exit 0" is "$(rc_of assemble)" 0
want=$(echo "$UUID" | tr -d ':'); md=
for u in /sys/block/md*/md/uuid; do [ "$(tr -d '-' <"$u" 2>/dev/null)" = "$want" ] && md=$(echo "$u" | cut -d/ -f4); done
check "the array runs, assembled by dbhost" is "$(mdattr "$md" array_state)" clean
check "all 3 members in it" is "$(ls -d /sys/block/$md/md/dev-* | wc -l)" 3
run apply $DBHOST --output json apply --profile {profile_path(LEGACY_PROFILE[0])} --yes
check "apply: exit 0" is "$(rc_of apply)" 0
check "apply: mounted at /mnt/legacy" mountpoint -q /mnt/legacy
check "apply: the data mdadm's array carried" is "$(cat /mnt/legacy/proof)" "written before dbhost came"
check "apply: no mkfs (same filesystem UUID)" is "$(blkid -s UUID -o value /dev/$md)" "$FSUUID"
run apply2 $DBHOST --output json apply --profile {profile_path(LEGACY_PROFILE[0])} --yes
check "second apply: exit 0" is "$(rc_of apply2)" 0
check "second apply: changed nothing" has "$(out_of apply2 | tr -d ' ')" '"changed":0'
umount /mnt/legacy
"""


BYMDADM = [Disk(f"b{i}", size=64 * MIB, serial=f"bymdadm-{i}") for i in range(3)]
MDADM_ASSEMBLES = """
UUID=$(cat "$VMTEST_JOB/claims/$CLAIM/prev/uuid" 2>/dev/null)
check "boot 1's UUID" test -n "$UUID"
MDADM_NO_UDEV=1 mdadm --assemble --scan --uuid="$UUID" >"$VMTEST_OUT/assemble.txt" 2>&1
check "mdadm --assemble --scan finds and assembles it" test $? = 0
md=$(basename "$(readlink -f /dev/md/bymdadm)")
DT=$(mdadm --detail /dev/md/bymdadm 2>&1 | tr -s ' ')
check "mdadm --detail: clean, 3 devices" sh -c 'echo "$1" | grep -qE "State : clean *$" && echo "$1" | grep -q "Active Devices : 3"' _ "$DT"
check "mdadm --detail: dbhost's UUID" has "$DT" "UUID : $UUID"
B=(); for i in 0 1 2; do B+=("$(dev_of bymdadm-$i)"); done
for i in 0 1 2; do
  check "member $i keeps role $i" is "$(mdattr $md dev-$(kname "${B[$i]}")/slot)" $i
  check "array chunk $i still there" read_is_pat4k /dev/md/bymdadm $((524288 * i)) $i
done
mdadm --stop /dev/md/bymdadm >/dev/null 2>&1
"""


UDEV = [Disk(f"u{i}", size=64 * MIB, serial=f"mdudev-{i}") for i in range(2)]
ONE_ARRAY = r"""
check "exactly one md array" is "$(grep -c '^md' /proc/mdstat)" 1
check "no inactive array" hasnt "$(cat /proc/mdstat)" "inactive"
check "/dev/md holds only withudev" is "$(ls /dev/md)" withudev
md=$(kname /dev/md/withudev)
check "array clean" is "$(mdattr $md array_state)" clean
check "both members in it" is "$(ls -d /sys/block/$md/md/dev-* | wc -l)" 2
check "mdadm --detail: name" has "$(mdadm --detail /dev/md/withudev 2>&1 | tr -s ' ')" "Name : any:withudev"
"""
WITH_UDEV_1 = r"""
check "mdadm's udev rules are active" test -e /etc/udev/rules.d/64-md-raid-assembly.rules
U=(); for i in 0 1; do U+=("$(dev_of mdudev-$i)"); done
run create $DBHOST md create --name withudev "${U[@]}"
check "md create exit 0" is "$(rc_of create)" 0
check "md create says created" has "$(out_of create)" "created/started array withudev"
""" + ONE_ARRAY + r"""
udevadm trigger --action=change "${U[@]}"
udevadm settle --timeout=60
""" + ONE_ARRAY + r"""
check "mdadm's map names it /dev/md/withudev" hasre "$(cat /run/mdadm/map)" "^md[0-9]+ 1.2 [0-9a-f:]+ /dev/md/withudev$"
write_pat4k /dev/md/withudev 0 7
sync
run stop $DBHOST md stop withudev
check "md stop exit 0" is "$(rc_of stop)" 0
"""
WITH_UDEV_2 = r"""
udevadm settle --timeout=60
""" + ONE_ARRAY + r"""
check "data intact" read_is_pat4k /dev/md/withudev 0 7
run assemble $DBHOST assemble
check "dbhost assemble exit 0" is "$(rc_of assemble)" 0
check "dbhost assemble: already running" has "$(out_of assemble)" "withudev: already running"
"""


def claims() -> list:
    return [
        Claim(name="mdadm-array-adopted-by-dbhost",
              proves="an array mdadm made (RAID-0, XFS, a file on it) is planned as adopt, assembled by dbhost "
                     "assemble and adopted by apply without a mkfs; the file is there; a second apply changes "
                     "nothing",
              disks=LEGACY, profiles=dict([LEGACY_PROFILE]), md=True, solo=True,
              steps=[MBoot(job=ADOPT, check=lambda run, out: rc_is(out, "apply", 0), timeout=300)]),
        Claim(name="dbhost-array-assembled-by-mdadm",
              proves="an array dbhost made is read by mdadm --detail/--examine, and after a reboot mdadm "
                     "--assemble --scan assembles it with the same roles and data",
              disks=BYMDADM, md=True,
              steps=[MBoot(job=create_job("bymdadm", BYMDADM),
                           check=lambda run, out: examine_all(BYMDADM, "bymdadm")(run)),
                     MBoot(job=MDADM_ASSEMBLES)]),
        Claim(name="md-create-beside-mdadm-udev",
              proves="with mdadm's udev rules active (incremental assembly), dbhost md create leaves exactly one "
                     "array under its name (no md127 duplicate, no inactive extra), change events included; at the "
                     "next boot mdadm's coldplug assembles it once and dbhost assemble says already running",
              disks=UDEV, md=True, kernel_args=["vmtest.mdadm-udev"],
              steps=[MBoot(job=WITH_UDEV_1), MBoot(job=WITH_UDEV_2)]),
    ]
