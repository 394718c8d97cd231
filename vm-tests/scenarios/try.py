"""try: the README's "see it work" guest (scripts/try.sh). Two blank no-cache data disks at LUN
0/1, MariaDB holding a little data, dbhost run by cloud-init exactly as a user would. The job
records the guest's state; try.sh prints it. Not part of the suite (it asserts only that the
guest ran and MariaDB served its data).

cloud-init runs detect, plan, `apply --yes` (MariaDB moves onto the fresh array) and status."""

from harness import Boot, Disk, Scenario, dbhost_runcmd

PROFILE = "/usr/local/share/dbhost/profiles/qemu-dev.toml"
SQL = ("CREATE DATABASE IF NOT EXISTS shop; "
       "CREATE TABLE IF NOT EXISTS shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40), qty INT); "
       "USE shop; INSERT INTO shop.orders (item, qty) SELECT CONCAT('item-', seq), seq MOD 7 FROM seq_1_to_1000;")

SCENARIO = Scenario(
    name="try",
    description="see it work: 2 blank no-cache disks, MariaDB with data, dbhost via cloud-init",
    suite=False,
    disks=[
        Disk("lun0", size="4G", bus="scsi", lun=0, serial="data-lun0"),
        Disk("lun1", size="4G", bus="scsi", lun=1, serial="data-lun1"),
    ],
    mask=["postgresql.service"],
    user_data={"runcmd": [
        "systemctl start mariadb",
        f'mysql -e "{SQL}"',
        "lsblk -o NAME,SIZE,TYPE,SERIAL,MOUNTPOINTS > /run/vmtest/out/lsblk-before.txt",
        dbhost_runcmd("detect", "detect"),
        dbhost_runcmd(f"plan --profile {PROFILE}", "plan"),
        dbhost_runcmd(f"apply --profile {PROFILE} --yes", "apply"),
        dbhost_runcmd("status", "status"),
    ]},
    steps=[Boot(job="""
{
  echo "## lsblk"; lsblk -o NAME,SIZE,TYPE,SERIAL,FSTYPE,MOUNTPOINTS
  echo; echo "## md arrays (/proc/mdstat)"; cat /proc/mdstat 2>/dev/null || echo "(md driver not loaded)"
  echo; echo "## mounts of data filesystems"; findmnt -rn -o TARGET,SOURCE,FSTYPE -t xfs,ext4 | grep -v ' /dev/vda ' || true
  echo; echo "## MariaDB"; systemctl is-active mariadb
  mysql -Nse "SELECT CONCAT('datadir: ', @@datadir); SELECT CONCAT('shop.orders rows: ', COUNT(*)) FROM shop.orders"
} > "$VMTEST_OUT/state.txt" 2>&1
check "MariaDB serves the demo data" sh -c 'test "$(mysql -Nse "SELECT COUNT(*) FROM shop.orders")" -ge 1000'
check "dbhost apply exited 0" test "$(cat $VMTEST_OUT/apply.rc)" = 0
check "MariaDB serves from the array" test "$(mysql -Nse 'SELECT @@datadir')" = /datadrive/mysql/
""")],
)
