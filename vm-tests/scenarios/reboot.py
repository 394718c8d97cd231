"""reboot: the guest survives a clean reboot and a hard power-off, and runs each step.

boot 1: cloud-init's runcmd (per instance) runs dbhost detect; the job writes a file and reboots.
boot 2: same instance: runcmd did not run again, the file is there, a new boot id; the job then
        writes and fsyncs in a loop and the host pulls the plug (QMP quit) at a marker.
boot 3: the guest boots again after the hard power-off and sees the fsynced data."""

from harness import Boot, Disk, PowerOff, Scenario, dbhost_runcmd, expect, read_text

STATE = "/var/lib/vmtest-reboot"


def check1(run, out):
    rc = read_text(out / "detect.rc").strip()
    expect(rc == "0", f"dbhost detect exited {rc} at first boot: {read_text(out / 'detect.err')[-800:]}")


SCENARIO = Scenario(
    name="reboot",
    # A self-test of the bed (runcmd once per instance, clean reboot, QMP power-off); dbhost's own
    # reboots and power cuts are proven by roomsy, md-create-2 and crash-matrix. Run by name.
    suite=False,
    description="clean reboot and hard power-off; each boot runs its step; runcmd only once per instance",
    disks=[Disk("lun0", size="1G", bus="scsi", lun=0, serial="data-r0")],
    user_data={"runcmd": [
        f"mkdir -p {STATE} && echo ran >> {STATE}/runcmd-count",
        dbhost_runcmd("detect --output json", "detect"),
    ]},
    mask=["mariadb.service", "postgresql.service"],
    steps=[
        Boot(job=f"""
check "runcmd ran once" test "$(wc -l < {STATE}/runcmd-count)" = 1
cat /proc/sys/kernel/random/boot_id > {STATE}/boot1-id
echo persisted > {STATE}/file && sync
next_boot reboot
""", check=check1),
        Boot(job=f"""
check "file survived the reboot" grep -qx persisted {STATE}/file
check "new boot id" test "$(cat /proc/sys/kernel/random/boot_id)" != "$(cat {STATE}/boot1-id)"
check "runcmd not re-run (same instance)" test "$(wc -l < {STATE}/runcmd-count)" = 1
check "dbhost still installed" test -x /usr/local/sbin/dbhost
check "data disk still there" sh -c 'ls /dev/disk/by-id | grep -q data-r0'
n=0
# write + fsync a counter; the host powers the VM off hard somewhere in this loop
python3 - <<'PY' &
import os
fd = os.open("{STATE}/counter", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
for i in range(1, 1000000):
    os.pwrite(fd, b"%d\\n" % i, 0); os.fsync(fd)
    if i == 20:
        with open("/dev/ttyS1", "w") as t: t.write("VMTEST-MARK writing\\n")
PY
wait
""", on_mark={"writing": [PowerOff()]}, expect_job=False),
        Boot(job=f"""
check "boots after a hard power-off" true
check "fsynced data survived" sh -c 'test "$(cat {STATE}/counter)" -ge 20'
check "root is read-write" sh -c 'touch /var/lib/vmtest-reboot/rw'
check "runcmd not re-run" test "$(wc -l < {STATE}/runcmd-count)" = 1
"""),
    ],
)
