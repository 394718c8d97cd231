#!/usr/bin/env python3
"""Generate the host-tree fixtures under agent/tests/fixtures/ (stdlib only).

Each fixture is a small host root (sys/, dev/, proc/) shaped like the real thing:

* /sys/block/<name> is a relative symlink into /sys/devices/...; the canonical device path
  follows the kernel's layout for the bus (VMBus storvsc: .../VMBUS:00/<vmbus-guid>/hostH/
  targetH:C:T/H:C:T:L/block/sdX with `device_id` = "{guid}" in the VMBus device directory;
  NVMe: .../nvme/nvmeN/nvmeNnM with `nsid`, controller `model`/`serial` padded like the
  kernel prints them; virtio-blk: .../virtioN/block/vdX with `serial`; virtio-scsi:
  .../virtioN/hostH/targetH:C:T/H:C:T:L/block/sdX).
* `device` links, `holders/`, `slaves/`, partitions as subdirectories with a `partition` file.
* /dev/disk/by-id, by-path and /dev/disk/azure links (WALinuxAgent's `root`, `resource`,
  `scsi1/lunN`; azure-vm-utils' `os`, `data/by-lun/N`, `local/by-serial/S`) where the
  fixture models a host that has those udev rules installed.
* /dev/<disk> is a regular file holding only the head of the device (zeros beyond; dbhost's
  probe reads it like a device of the sysfs size). Empty file = blank disk.
* /proc/self/mounts, /proc/swaps, /proc/sys/kernel/osrelease.

Run from the repository root:  python3 scripts/gen-fixtures.py
The trees are committed; re-running must produce no diff.
"""

import os
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "agent", "tests", "fixtures")
GIB = 1 << 30
AZURE_TAG = "7783-7084-3265-9085-8269-3286-77"
STORVSC_CLASS = "{ba6163d9-04a1-4d29-b605-72e2ffb1dc7f}"
IDE_CLASS = "{32412632-86cb-44a2-9b5c-50d1417354f5}"
VMBUS = "devices/LNXSYSTM:00/LNXSYBUS:00/ACPI0004:00/VMBUS:00"
VMBUS_GEN1 = "devices/LNXSYSTM:00/LNXSYBUS:00/PNP0A03:00/device:07/VMBUS:01"


class Tree:
    def __init__(self, name):
        self.root = os.path.join(ROOT, name)
        if os.path.exists(self.root):
            shutil.rmtree(self.root)
        os.makedirs(self.root)
        self.mounts = []
        self.swaps = []

    def p(self, rel):
        return os.path.join(self.root, rel)

    def file(self, rel, content):
        path = self.p(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(path, mode) as f:
            f.write(content)

    def dir(self, rel):
        os.makedirs(self.p(rel), exist_ok=True)

    def link(self, rel, target_rel):
        """Relative symlink at `rel` pointing at `target_rel` (both relative to the host root)."""
        path = self.p(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        t = os.path.relpath(self.p(target_rel), os.path.dirname(path))
        if os.path.lexists(path):
            os.remove(path)
        os.symlink(t, path)

    def dmi(self, sys_vendor, product_name, chassis_asset_tag="", hypervisor_uuid=None):
        d = "sys/devices/virtual/dmi/id"
        self.file(f"{d}/sys_vendor", sys_vendor + "\n")
        self.file(f"{d}/product_name", product_name + "\n")
        self.file(f"{d}/chassis_asset_tag", chassis_asset_tag + "\n")
        self.link("sys/class/dmi/id", d)
        if hypervisor_uuid:
            self.file("sys/hypervisor/uuid", hypervisor_uuid + "\n")
        self.file("proc/sys/kernel/osrelease", "6.1.0-28-cloud-amd64\n")

    def block(self, name, devpath, sectors, major, minor, lbs=512, pbs=4096, rot=0,
              wc="write back", discard=0, parts=(), content=b"", device_rel=None, extra=None):
        """A whole disk at sys/<devpath> (ending in /<name>), with partitions
        parts = [(pname, sectors, mountpoint|None, holder|None)]."""
        d = f"sys/{devpath}"
        self.file(f"{d}/dev", f"{major}:{minor}\n")
        self.file(f"{d}/size", f"{sectors}\n")
        self.file(f"{d}/ro", "0\n")
        self.file(f"{d}/removable", "0\n")
        self.file(f"{d}/queue/logical_block_size", f"{lbs}\n")
        self.file(f"{d}/queue/physical_block_size", f"{pbs}\n")
        self.file(f"{d}/queue/rotational", f"{rot}\n")
        self.file(f"{d}/queue/write_cache", wc + "\n")
        self.file(f"{d}/queue/discard_granularity", f"{discard}\n")
        self.dir(f"{d}/holders")
        self.dir(f"{d}/slaves")
        for k, v in (extra or {}).items():
            self.file(f"{d}/{k}", v)
        if device_rel:
            self.link(f"{d}/device", f"sys/{device_rel}")
        self.link(f"sys/block/{name}", d)
        self.link(f"sys/class/block/{name}", d)
        start = 2048
        for i, (pname, psec, mnt, holder) in enumerate(parts):
            pd = f"{d}/{pname}"
            self.file(f"{pd}/partition", f"{i + 1}\n")
            self.file(f"{pd}/dev", f"{major}:{minor + i + 1}\n")
            self.file(f"{pd}/size", f"{psec}\n")
            self.file(f"{pd}/start", f"{start}\n")
            self.dir(f"{pd}/holders")
            if holder:
                self.link(f"{pd}/holders/{holder}", f"sys/devices/virtual/block/{holder}")
            self.link(f"sys/class/block/{pname}", pd)
            start += psec
            if mnt == "[SWAP]":
                self.swaps.append(f"/dev/{pname}")
            elif mnt:
                self.mounts.append((f"/dev/{pname}", mnt))
        self.file(f"dev/{name}", content)

    def by_id(self, name, *ids, sub="by-id"):
        for i in ids:
            self.link(f"dev/disk/{sub}/{i}", f"dev/{name}")

    def finish(self, extra_mounts=()):
        lines = ["sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0",
                 "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0",
                 "udev /dev devtmpfs rw,nosuid,relatime,size=4010212k,mode=755 0 0",
                 "tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=804100k,mode=755 0 0"]
        for src, mnt in list(self.mounts) + list(extra_mounts):
            fs = "vfat" if "efi" in mnt else "ext4"
            lines.append(f"{src} {mnt} {fs} rw,relatime 0 0")
        self.file("proc/self/mounts", "\n".join(lines) + "\n")
        sw = ["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority"]
        for s in self.swaps:
            sw.append(f"{s}                               partition\t2097148\t\t0\t\t-2")
        self.file("proc/swaps", "\n".join(sw) + "\n")


# ---------------------------------------------------------------- device contents (heads)

def mbr(types):
    b = bytearray(512)
    for i, t in enumerate(types):
        e = 446 + 16 * i
        b[e] = 0
        b[e + 4] = t
        struct.pack_into("<II", b, e + 8, 2048, 1 << 20)
    b[510:512] = b"\x55\xaa"
    return bytes(b)


def gpt_head():
    b = bytearray(mbr([0xEE]) + bytes(512))
    b[512:520] = b"EFI PART"
    return bytes(b)


def ext4_head(label):
    b = bytearray(2048)
    struct.pack_into("<H", b, 0x438, 0xEF53)
    struct.pack_into("<I", b, 1024 + 0x5C, 0x4)       # has_journal
    struct.pack_into("<I", b, 1024 + 0x60, 0x2C2)     # filetype, extents, 64bit, flex_bg
    b[1024 + 0x68:1024 + 0x78] = bytes(range(1, 17))
    b[1024 + 0x78:1024 + 0x78 + len(label)] = label.encode()
    return bytes(b)


def md12_head(uuid, name, level, raid_disks, dev_number, events, chunk=1024):
    """A v1.2 superblock at byte 4096 (MD.md §1.2), valid checksum, max_dev 128."""
    sb = bytearray(4096)
    struct.pack_into("<III", sb, 0, 0xA92B4EFC, 1, 0)
    sb[16:32] = uuid
    sb[32:32 + len(name)] = name.encode()
    struct.pack_into("<Q", sb, 64, 1700000000)
    struct.pack_into("<iiQII", sb, 72, level, 0, 0, chunk, raid_disks)
    struct.pack_into("<QQQ", sb, 128, 264192, 268171264, 8)
    struct.pack_into("<I", sb, 160, dev_number)
    struct.pack_into("<Q", sb, 192, 1700000000)
    struct.pack_into("<QQ", sb, 200, events, 0xFFFFFFFFFFFFFFFF)
    struct.pack_into("<I", sb, 220, 128)
    for i in range(128):
        struct.pack_into("<H", sb, 256 + 2 * i, i if i < raid_disks else 0xFFFF)
    total = 0
    for off in range(0, 256 + 2 * 128, 4):
        total += 0 if off == 216 else struct.unpack_from("<I", sb, off)[0]
    csum = ((total & 0xFFFFFFFF) + (total >> 32)) & 0xFFFFFFFF
    struct.pack_into("<I", sb, 216, csum)
    return bytes(4096) + bytes(sb)


# ---------------------------------------------------------------- Azure SCSI helpers

def storvsc_disk(t, name, vmbus_root, guid, hctl, sectors, minor, cls=STORVSC_CLASS, **kw):
    h, c, tg, l = hctl.split(":")
    vm = f"{vmbus_root}/{guid}"
    t.file(f"sys/{vm}/device_id", "{" + guid + "}\n")
    t.file(f"sys/{vm}/class_id", cls + "\n")
    sdev = f"{vm}/host{h}/target{h}:{c}:{tg}/{hctl}"
    t.file(f"sys/{sdev}/vendor", "Msft    \n")
    t.file(f"sys/{sdev}/model", "Virtual Disk    \n")
    t.file(f"sys/{sdev}/rev", "1.0 \n")
    t.block(name, f"{sdev}/block/{name}", sectors, 8, minor, device_rel=sdev, **kw)


def gen_azure_gen1():
    t = Tree("azure-gen1-scsi")
    t.dmi("Microsoft Corporation", "Virtual Machine", AZURE_TAG)
    os_g, res_g = "00000000-0000-8899-0000-000000000000", "00000000-0001-8899-0000-000000000000"
    data_g = "f8b3781b-1e82-4818-a1c3-63d806ec15bb"
    storvsc_disk(t, "sda", VMBUS_GEN1, os_g, "0:0:0:0", 30 * GIB // 512, 0, cls=IDE_CLASS,
                 parts=[("sda1", 62912479, "/", None)], content=mbr([0x83]))
    storvsc_disk(t, "sdb", VMBUS_GEN1, res_g, "1:0:1:0", 16 * GIB // 512, 16, cls=IDE_CLASS,
                 parts=[("sdb1", 33550336, None, None)], content=mbr([0x07]))
    storvsc_disk(t, "sdc", VMBUS_GEN1, data_g, "3:0:0:0", 128 * GIB // 512, 32)
    storvsc_disk(t, "sdd", VMBUS_GEN1, data_g, "3:0:0:1", 128 * GIB // 512, 48)
    # WALinuxAgent 66-azure-storage.rules links
    t.link("dev/disk/azure/root", "dev/sda")
    t.link("dev/disk/azure/root-part1", "dev/sda1")
    t.link("dev/disk/azure/resource", "dev/sdb")
    t.link("dev/disk/azure/resource-part1", "dev/sdb1")
    t.link("dev/disk/azure/scsi1/lun0", "dev/sdc")
    t.link("dev/disk/azure/scsi1/lun1", "dev/sdd")
    t.by_id("sda", "scsi-14d534654202020202d2f7e1a3a0a4a4a8b2f0e3d1b2c3d4e")
    t.by_id("sdc", "scsi-3600224801f3c4e5d6a7b8c9d0e1f2a3b", "wwn-0x600224801f3c4e5d6a7b8c9d0e1f2a3b")
    t.by_id("sdd", "scsi-36002248022aa33bb44cc55dd66ee77ff", "wwn-0x6002248022aa33bb44cc55dd66ee77ff")
    t.finish()


def gen_azure_gen2():
    t = Tree("azure-gen2")
    t.dmi("Microsoft Corporation", "Virtual Machine", AZURE_TAG)
    t.dir("sys/firmware/efi")
    os_g, data_g = "f8b3781a-1e82-4818-a1c3-63d806ec15bb", "f8b3781b-1e82-4818-a1c3-63d806ec15bb"
    storvsc_disk(t, "sda", VMBUS, os_g, "0:0:0:0", 30 * GIB // 512, 0,
                 parts=[("sda1", 60000000, "/", None), ("sda14", 8192, None, None),
                        ("sda15", 217088, "/boot/efi", None)], content=gpt_head())
    storvsc_disk(t, "sdb", VMBUS, os_g, "0:0:0:1", 64 * GIB // 512, 16,
                 parts=[("sdb1", 134213632, "/mnt", None)], content=gpt_head())
    for i, n in enumerate(["sdc", "sdd", "sde", "sdf"]):
        content = ext4_head("olddata") if n == "sdf" else b""
        storvsc_disk(t, n, VMBUS, data_g, f"1:0:0:{i}", 256 * GIB // 512, 32 + 16 * i,
                     content=content)
    t.finish()


def nvme_ns(t, ctrl_path, ctrl, ns, nsid, sectors, major_minor, model, serial, **kw):
    cdir = f"{ctrl_path}/nvme/{ctrl}"
    t.file(f"sys/{cdir}/model", model.ljust(40) + "\n")
    t.file(f"sys/{cdir}/serial", serial.ljust(20) + "\n")
    t.file(f"sys/{cdir}/firmware_rev", "1.0     \n")
    t.file(f"sys/{cdir}/transport", "pcie\n")
    t.link(f"sys/class/nvme/{ctrl}", cdir)
    t.block(ns, f"{cdir}/{ns}", sectors, 259, major_minor, device_rel=cdir,
            extra={"nsid": f"{nsid}\n"}, **kw)


def gen_azure_nvme():
    t = Tree("azure-nvme-v6")
    t.dmi("Microsoft Corporation", "Virtual Machine", AZURE_TAG)
    t.dir("sys/firmware/efi")
    acc = f"{VMBUS}/00000000-0000-0000-0000-000000000001/pci0001:00/0001:00:00.0"
    loc = f"{VMBUS}/00000000-0000-0000-0000-000000000002/pci0002:00/0002:00:00.0"
    m = "MSFT NVMe Accelerator v1.0"
    nvme_ns(t, acc, "nvme0", "nvme0n1", 1, 30 * GIB // 512, 0, m, "SN-ACC-0",
            parts=[("nvme0n1p1", 60000000, "/", None), ("nvme0n1p15", 217088, "/boot/efi", None)],
            content=gpt_head())
    nvme_ns(t, acc, "nvme0", "nvme0n2", 2, 512 * GIB // 512, 3, m, "SN-ACC-0")
    nvme_ns(t, acc, "nvme0", "nvme0n3", 3, 512 * GIB // 512, 4, m, "SN-ACC-0")
    nvme_ns(t, loc, "nvme1", "nvme1n1", 1, 440 * 10**9 // 512, 5, "Microsoft NVMe Direct Disk v2",
            "a1b2c3d4e5f60718")
    # azure-vm-utils 80-azure-disk.rules links
    t.link("dev/disk/azure/os", "dev/nvme0n1")
    t.link("dev/disk/azure/os-part1", "dev/nvme0n1p1")
    t.link("dev/disk/azure/data/by-lun/0", "dev/nvme0n2")
    t.link("dev/disk/azure/data/by-lun/1", "dev/nvme0n3")
    t.link("dev/disk/azure/local/by-serial/a1b2c3d4e5f60718", "dev/nvme1n1")
    t.by_id("nvme0n2", "nvme-MSFT_NVMe_Accelerator_v1.0_SN-ACC-0_2")
    t.by_id("nvme0n3", "nvme-MSFT_NVMe_Accelerator_v1.0_SN-ACC-0_3")
    t.by_id("nvme1n1", "nvme-Microsoft_NVMe_Direct_Disk_v2_a1b2c3d4e5f60718")
    t.finish()


def gen_aws():
    t = Tree("aws-nitro")
    t.dmi("Amazon EC2", "m5d.2xlarge", "Amazon EC2")
    ebs, inst = "Amazon Elastic Block Store", "Amazon EC2 NVMe Instance Storage"
    disks = [("nvme0", "0000:00:04.0", ebs, "vol0a1b2c3d4e5f60001", 8 * GIB),
             ("nvme1", "0000:00:1f.0", ebs, "vol0a1b2c3d4e5f60002", 500 * GIB),
             ("nvme2", "0000:00:1d.0", inst, "AWS22B3C4D5E6F708192", 150 * 10**9),
             ("nvme3", "0000:00:1e.0", inst, "AWS33C4D5E6F7081920A", 150 * 10**9)]
    for i, (c, pci, model, serial, size) in enumerate(disks):
        ns = f"{c}n1"
        kw = {}
        if i == 0:
            kw = dict(parts=[("nvme0n1p1", 16000000, "/", None), ("nvme0n1p15", 217088, "/boot/efi", None)],
                      content=gpt_head())
        nvme_ns(t, f"devices/pci0000:00/{pci}", c, ns, 1, size // 512, i * 16, model, serial, **kw)
        t.by_id(ns, f"nvme-{model.replace(' ', '_')}_{serial}")
        t.by_id(ns, f"pci-{pci}-nvme-1", sub="by-path")
    t.finish()


def gen_gcp():
    t = Tree("gcp")
    t.dmi("Google", "Google Compute Engine", "")
    vs = "devices/pci0000:00/0000:00:03.0/virtio0"
    for n, lun, minor, size, did, parts, content in [
            ("sda", "0:0:1:0", 0, 20 * GIB, "persistent-disk-0",
             [("sda1", 41000000, "/", None), ("sda15", 217088, "/boot/efi", None)], gpt_head()),
            ("sdb", "0:0:2:0", 16, 1000 * GIB, "pgdata", [], b"")]:
        h, c, tg, l = lun.split(":")
        sdev = f"{vs}/host0/target0:0:{tg}/{lun}"
        t.file(f"sys/{sdev}/vendor", "Google  \n")
        t.file(f"sys/{sdev}/model", "PersistentDisk  \n")
        t.block(n, f"{sdev}/block/{n}", size // 512, 8, minor, device_rel=sdev, parts=parts,
                content=content)
        t.by_id(n, f"google-{did}", f"scsi-0Google_PersistentDisk_{did}")
    nvme_ns(t, "devices/pci0000:00/0000:00:04.0", "nvme0", "nvme0n1", 1, 375 * GIB // 512, 0,
            "nvme_card", "nvme_card")
    t.by_id("nvme0n1", "google-local-nvme-ssd-0", "nvme-nvme_card_nvme_card")
    t.finish()


def vpd80(serial):
    return bytes([0, 0x80, 0, len(serial)]) + serial.encode()


def gen_qemu():
    t = Tree("qemu-virtio-scsi")
    t.dmi("QEMU", "Standard PC (Q35 + ICH9, 2009)", "")
    vb = "devices/pci0000:00/0000:00:02.0/virtio1"
    t.block("vda", f"{vb}/block/vda", 8 * GIB // 512, 254, 0, rot=1, device_rel=vb,
            parts=[("vda1", 14000000, "/", None), ("vda2", 2000000, "[SWAP]", None)],
            content=mbr([0x83, 0x82]), extra={"serial": "\n"})
    vs = "devices/pci0000:00/0000:00:03.0/virtio2"
    for n, l, minor, serial in [("sda", 0, 0, "data0"), ("sdb", 1, 16, "data1")]:
        sdev = f"{vs}/host2/target2:0:0/2:0:0:{l}"
        t.file(f"sys/{sdev}/vendor", "QEMU    \n")
        t.file(f"sys/{sdev}/model", "QEMU HARDDISK   \n")
        t.file(f"sys/{sdev}/vpd_pg80", vpd80(serial))
        t.block(n, f"{sdev}/block/{n}", 4 * GIB // 512, 8, minor, rot=1, device_rel=sdev)
        t.by_id(n, f"scsi-0QEMU_QEMU_HARDDISK_{serial}")
        t.by_id(n, f"pci-0000:00:03.0-scsi-0:0:0:{l}", sub="by-path")
    nvme_ns(t, "devices/pci0000:00/0000:00:04.0", "nvme0", "nvme0n1", 1, 4 * GIB // 512, 0,
            "QEMU NVMe Ctrl", "nvmedata")
    t.by_id("nvme0n1", "nvme-QEMU_NVMe_Ctrl_nvmedata")
    # an attached loop device and an empty one: not disks
    t.block("loop0", "devices/virtual/block/loop0", 0, 7, 0)
    t.block("loop1", "devices/virtual/block/loop1", 2048, 7, 1)
    t.finish()
    # booted without an initramfs: / shows up as "/dev/root"; only major:minor tells
    t.file("proc/self/mountinfo", "\n".join([
        "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw",
        "23 1 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw",
        "1 0 254:1 / / rw,relatime shared:1 - ext4 /dev/root rw",
        "30 1 0:25 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755",
    ]) + "\n")


def gen_shuffled():
    """Azure Gen2 whose device letters are shuffled: the OS disk is sdc (root on LVM), the
    data disks' letters are not in LUN order, one data disk carries a v1.2 md superblock."""
    t = Tree("shuffled")
    t.dmi("Microsoft Corporation", "Virtual Machine", AZURE_TAG)
    os_g, data_g = "f8b3781a-1e82-4818-a1c3-63d806ec15bb", "f8b3781b-1e82-4818-a1c3-63d806ec15bb"
    storvsc_disk(t, "sda", VMBUS, data_g, "1:0:0:1", 128 * GIB // 512, 0)
    storvsc_disk(t, "sdb", VMBUS, data_g, "1:0:0:0", 128 * GIB // 512, 16)
    storvsc_disk(t, "sdc", VMBUS, os_g, "0:0:0:0", 64 * GIB // 512, 32,
                 parts=[("sdc1", 1000000, "/boot", None), ("sdc2", 120000000, None, "dm-0")],
                 content=gpt_head())
    storvsc_disk(t, "sdd", VMBUS, os_g, "0:0:0:1", 32 * GIB // 512, 48)
    uuid = bytes.fromhex("0123456789abcdef0123456789abcdef")
    storvsc_disk(t, "sde", VMBUS, data_g, "1:0:0:2", 128 * GIB // 512, 64,
                 content=md12_head(uuid, "any:dbdata", 0, 2, 0, 42))
    # root LV: dm-0 on sdc2, mounted at / through /dev/mapper
    dm = "devices/virtual/block/dm-0"
    t.file(f"sys/{dm}/dev", "253:0\n")
    t.file(f"sys/{dm}/size", "119000000\n")
    t.file(f"sys/{dm}/ro", "0\n")
    t.file(f"sys/{dm}/removable", "0\n")
    t.file(f"sys/{dm}/dm/name", "rootvg-rootlv\n")
    t.dir(f"sys/{dm}/holders")
    t.link(f"sys/{dm}/slaves/sdc2", f"sys/{VMBUS}/{os_g}/host0/target0:0:0/0:0:0:0/block/sdc/sdc2")
    t.link("sys/block/dm-0", f"sys/{dm}")
    t.link("dev/mapper/rootvg-rootlv", "dev/dm-0")
    t.file("dev/dm-0", b"")
    t.by_id("sde", "scsi-360022480aaaabbbbccccddddeeeeffff")
    t.finish(extra_mounts=[("/dev/mapper/rootvg-rootlv", "/")])


if __name__ == "__main__":
    gen_azure_gen1()
    gen_azure_gen2()
    gen_azure_nvme()
    gen_aws()
    gen_gcp()
    gen_qemu()
    gen_shuffled()
    print("fixtures written under", os.path.normpath(ROOT))
