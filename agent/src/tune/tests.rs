//! Tuning tests: exact knob values for several fact sets, overrides, rendering, and apply on a
//! fake host tree (first run changes, second run changes nothing, tuning off removes the files).

use super::apply::{apply, observe, FileOutcome, Outcome};
use super::facts::*;
use super::knobs::*;
use super::render::*;
use crate::host::{FakeExec, Host};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

const MD_UUID: &str = "3a9a4a6e-1f2b-4c3d-8e9f-0a1b2c3d4e5f";

fn member(name: &str) -> MemberFacts {
    MemberFacts {
        name: name.into(),
        rotational: false,
        hw_queues: 1,
        schedulers: vec!["mq-deadline".into(), "none".into()],
        cap_mbps: None,
        cap_iops: None,
        cap_source: None,
        account_type: None,
    }
}

/// 2 × Azure P30 (5000 IOPS, 200 MB/s, Premium_LRS, reported rotational=1 by Hyper-V),
/// 8 vCPU / 32 GiB, MySQL 8.0.39, RAID-0 md127, XFS at /datadrive.
fn azure_mysql() -> TuneFacts {
    let m = |n: &str| MemberFacts {
        rotational: true,
        hw_queues: 2,
        cap_mbps: Some(200),
        cap_iops: Some(5000),
        cap_source: Some("azure-imds".into()),
        account_type: Some("Premium_LRS".into()),
        ..member(n)
    };
    TuneFacts {
        ram_bytes: 32 * GIB,
        cpus: 8,
        members: vec![m("sdc"), m("sdd")],
        md: Some(MdFacts {
            name: "md127".into(),
            uuid: Some(MD_UUID.into()),
            chunk_bytes: Some(512 * 1024),
        }),
        fs_uuid: Some("0d6c3a52-58c8-4a0e-9a43-3b5bb2d7e0a1".into()),
        kernel: (6, 1),
        engine: Engine::Mysql,
        db_version: Some((8, 0, 39)),
        db_config_dir: Some("/etc/mysql/mysql.conf.d".into()),
        mount_point: Some("/datadrive".into()),
        fs_type: Some("xfs".into()),
        vm_cap_iops: None,
        data_bytes: Some(1 << 40),
    }
}

/// 4 QEMU virtio-scsi disks throttled to 20 MB/s / 400 IOPS (profile caps), rotational=1
/// (QEMU's default), single queue; 2 vCPU / 4 GiB; MariaDB 10.11.6.
fn qemu_mariadb() -> TuneFacts {
    let m = |n: &str| MemberFacts {
        rotational: true,
        cap_mbps: Some(20),
        cap_iops: Some(400),
        cap_source: Some("profile".into()),
        ..member(n)
    };
    TuneFacts {
        ram_bytes: 4 * GIB,
        cpus: 2,
        members: vec![m("sda"), m("sdb"), m("sdc"), m("sdd")],
        md: Some(MdFacts {
            name: "md127".into(),
            uuid: Some(MD_UUID.into()),
            chunk_bytes: Some(512 * 1024),
        }),
        fs_uuid: None,
        kernel: (6, 1),
        engine: Engine::Mariadb,
        db_version: Some((10, 11, 6)),
        db_config_dir: Some("/etc/mysql/mariadb.conf.d".into()),
        mount_point: Some("/datadrive".into()),
        fs_type: Some("xfs".into()),
        vm_cap_iops: None,
        data_bytes: None,
    }
}

/// PostgreSQL 15, 64 GiB / 16 vCPU, 4 NVMe members with 8 queues each, no caps known.
fn postgres_64g() -> TuneFacts {
    let m = |n: &str| MemberFacts {
        hw_queues: 8,
        schedulers: vec!["none".into(), "mq-deadline".into()],
        ..member(n)
    };
    TuneFacts {
        ram_bytes: 64 * GIB,
        cpus: 16,
        members: vec![m("nvme0n2"), m("nvme0n3"), m("nvme0n4"), m("nvme0n5")],
        md: Some(MdFacts {
            name: "md0".into(),
            uuid: Some(MD_UUID.into()),
            chunk_bytes: Some(512 * 1024),
        }),
        fs_uuid: None,
        kernel: (6, 8),
        engine: Engine::Postgresql,
        db_version: Some((15, 0, 0)),
        db_config_dir: Some("/etc/postgresql/15/main/conf.d".into()),
        mount_point: Some("/data".into()),
        fs_type: Some("ext4".into()),
        vm_cap_iops: None,
        data_bytes: None,
    }
}

/// One real spinning disk, no array, 1 vCPU / 2 GiB, MySQL of unknown version.
fn single_rotational() -> TuneFacts {
    TuneFacts {
        ram_bytes: 2 * GIB,
        cpus: 1,
        members: vec![MemberFacts {
            rotational: true,
            ..member("sdb")
        }],
        md: None,
        fs_uuid: Some("0d6c3a52-58c8-4a0e-9a43-3b5bb2d7e0a1".into()),
        kernel: (5, 15),
        engine: Engine::Mysql,
        db_version: None,
        db_config_dir: Some("/etc/mysql/mysql.conf.d".into()),
        mount_point: Some("/data".into()),
        fs_type: Some("ext4".into()),
        vm_cap_iops: None,
        data_bytes: None,
    }
}

fn none() -> Overrides {
    BTreeMap::new()
}

fn val<'a>(s: &'a TuneSet, name: &str) -> &'a str {
    &s.get(name)
        .unwrap_or_else(|| panic!("knob {name} missing; have {:?}", s.names()))
        .value
}

fn dev_val<'a>(s: &'a TuneSet, name: &str, dev: &str) -> &'a str {
    &s.get_dev(name, dev)
        .unwrap_or_else(|| panic!("knob {name} on {dev} missing"))
        .value
}

#[test]
fn azure_two_p30_mysql_exact() {
    let s = compute(&azure_mysql(), &none(), true).unwrap();
    for d in ["sdc", "sdd"] {
        assert_eq!(dev_val(&s, "queue.rotational", d), "0");
        assert_eq!(dev_val(&s, "queue.scheduler", d), "none");
        assert_eq!(dev_val(&s, "queue.rq_affinity", d), "1");
        assert_eq!(dev_val(&s, "queue.add_random", d), "0");
        assert!(s.get_dev("queue.nr_requests", d).is_none());
    }
    assert_eq!(dev_val(&s, "read_ahead_kb", "md127"), "1024");
    assert_eq!(val(&s, "vm.swappiness"), "1");
    assert_eq!(val(&s, "vm.dirty_background_bytes"), "67108864");
    assert_eq!(val(&s, "vm.dirty_bytes"), "536870912");
    assert_eq!(val(&s, "transparent_hugepage"), "never");
    assert_eq!(val(&s, "mount.options"), "noatime");
    assert_eq!(val(&s, "innodb_buffer_pool_size"), "24G");
    assert_eq!(val(&s, "innodb_io_capacity"), "7500");
    assert_eq!(val(&s, "innodb_io_capacity_max"), "10000");
    assert_eq!(val(&s, "innodb_flush_method"), "O_DIRECT");
    assert_eq!(val(&s, "innodb_flush_neighbors"), "0");
    assert_eq!(val(&s, "innodb_redo_log_capacity"), "4G");
    assert!(s.get("innodb_log_file_size").is_none());
    assert_eq!(val(&s, "innodb_read_io_threads"), "8");
    assert_eq!(val(&s, "innodb_write_io_threads"), "8");
    // Reasons cite the facts.
    let io = s.get("innodb_io_capacity").unwrap();
    assert!(io.reason.contains("2 × 5000"), "{}", io.reason);
    assert!(io.reason.contains("azure-imds"), "{}", io.reason);
    assert!(s
        .get("queue.rotational")
        .unwrap()
        .reason
        .contains("Premium_LRS"));
    assert!(s
        .get("vm.dirty_bytes")
        .unwrap()
        .reason
        .contains("at the array's 400 MB/s"));
    // Targets and persistence.
    let sched = s.get_dev("queue.scheduler", "sdc").unwrap();
    assert_eq!(sched.target_display, "/sys/block/sdc/queue/scheduler");
    assert_eq!(sched.persisted_in, "/etc/udev/rules.d/60-dbhost.rules");
    assert_eq!(
        s.get("vm.swappiness").unwrap().persisted_in,
        "/etc/sysctl.d/60-dbhost.conf"
    );
    let io = s.get("innodb_io_capacity").unwrap();
    assert_eq!(io.target_display, "mysql:innodb_io_capacity");
    assert_eq!(
        io.persisted_in,
        "/etc/mysql/mysql.conf.d/60-dbhost-tuning.cnf"
    );
    assert_eq!(
        s.get("transparent_hugepage").unwrap().persisted_in,
        "/etc/systemd/system/dbhost-thp.service"
    );
    assert!(s.knobs.iter().all(|k| k.source == Source::Computed));
    // Knob count: 2 members × 4 + read-ahead + 3 sysctl + THP + mount + 8 InnoDB.
    assert_eq!(s.knobs.len(), 22, "{:?}", s.names());
}

#[test]
fn qemu_four_throttled_mariadb_exact() {
    let s = compute(&qemu_mariadb(), &none(), true).unwrap();
    for d in ["sda", "sdb", "sdc", "sdd"] {
        assert!(s.get_dev("queue.rotational", d).is_none());
        assert_eq!(dev_val(&s, "queue.scheduler", d), "mq-deadline");
        assert_eq!(dev_val(&s, "queue.nr_requests", d), "256");
        assert_eq!(dev_val(&s, "queue.rq_affinity", d), "2");
        assert_eq!(dev_val(&s, "queue.add_random", d), "0");
    }
    assert_eq!(dev_val(&s, "read_ahead_kb", "md127"), "2048");
    assert_eq!(val(&s, "innodb_buffer_pool_size"), "2G");
    assert_eq!(val(&s, "innodb_io_capacity"), "1200");
    assert_eq!(val(&s, "innodb_io_capacity_max"), "1600");
    assert!(s.get("innodb_flush_method").is_none());
    assert!(s
        .notes
        .iter()
        .any(|n| n.contains("innodb_flush_method") && n.contains("already the default")));
    assert_eq!(val(&s, "innodb_flush_neighbors"), "0");
    assert_eq!(val(&s, "innodb_log_file_size"), "1G");
    assert!(s.get("innodb_redo_log_capacity").is_none());
    assert_eq!(val(&s, "innodb_read_io_threads"), "4");
    assert_eq!(
        s.get("innodb_log_file_size").unwrap().persisted_in,
        "/etc/mysql/mariadb.conf.d/60-dbhost-tuning.cnf"
    );
    assert!(s
        .get("innodb_io_capacity")
        .unwrap()
        .reason
        .contains("4 × 400 IOPS = 1600 (profile)"));
}

#[test]
fn postgres_64g_exact() {
    let s = compute(&postgres_64g(), &none(), true).unwrap();
    assert_eq!(dev_val(&s, "queue.scheduler", "nvme0n2"), "none");
    assert_eq!(dev_val(&s, "read_ahead_kb", "md0"), "2048");
    assert_eq!(val(&s, "shared_buffers"), "16GB");
    assert_eq!(val(&s, "effective_cache_size"), "48GB");
    assert_eq!(val(&s, "effective_io_concurrency"), "200");
    assert_eq!(val(&s, "maintenance_io_concurrency"), "200");
    assert_eq!(val(&s, "random_page_cost"), "1.1");
    assert_eq!(val(&s, "maintenance_work_mem"), "2GB");
    assert_eq!(val(&s, "wal_buffers"), "16MB");
    assert!(s.get("innodb_buffer_pool_size").is_none());
    assert_eq!(
        s.get("shared_buffers").unwrap().persisted_in,
        "/etc/postgresql/15/main/conf.d/60-dbhost-tuning.conf"
    );
    assert_eq!(val(&s, "mount.options"), "noatime");
}

#[test]
fn single_rotational_disk_exact() {
    let s = compute(&single_rotational(), &none(), true).unwrap();
    assert_eq!(dev_val(&s, "queue.scheduler", "sdb"), "mq-deadline");
    assert_eq!(dev_val(&s, "queue.nr_requests", "sdb"), "256");
    assert_eq!(dev_val(&s, "queue.rq_affinity", "sdb"), "1"); // 1 vCPU
    assert_eq!(dev_val(&s, "read_ahead_kb", "sdb"), "128");
    assert_eq!(val(&s, "innodb_buffer_pool_size"), "1G");
    assert_eq!(val(&s, "innodb_flush_method"), "O_DIRECT");
    assert!(s.get("innodb_io_capacity").is_none());
    assert!(s.get("innodb_redo_log_capacity").is_none());
    assert!(s.get("innodb_log_file_size").is_none());
    assert!(s.notes.iter().any(|n| n.contains("innodb_io_capacity")));
    assert!(s
        .notes
        .iter()
        .any(|n| n.contains("innodb_redo_log_capacity") && n.contains("version unknown")));
    assert!(s
        .get("innodb_flush_neighbors")
        .unwrap()
        .reason
        .contains("rotational=1"));
}

#[test]
fn postgres_rotational_keeps_page_cost() {
    let mut f = postgres_64g();
    for m in &mut f.members {
        m.rotational = true;
    }
    f.ram_bytes = 8 * GIB;
    let s = compute(&f, &none(), true).unwrap();
    assert!(s.get("random_page_cost").is_none());
    assert_eq!(val(&s, "effective_io_concurrency"), "8");
    assert_eq!(val(&s, "shared_buffers"), "2GB");
    assert_eq!(val(&s, "maintenance_work_mem"), "512MB");
    assert_eq!(dev_val(&s, "queue.scheduler", "nvme0n2"), "mq-deadline");
}

#[test]
fn vm_cap_bounds_io_capacity() {
    let mut f = azure_mysql();
    f.members.push(f.members[0].clone());
    f.members.push(f.members[0].clone());
    f.members[2].name = "sde".into();
    f.members[3].name = "sdf".into();
    f.vm_cap_iops = Some(12800); // E8ds_v5 under 4 × P30 = 20000
    let s = compute(&f, &none(), true).unwrap();
    assert_eq!(val(&s, "innodb_io_capacity"), "9600");
    assert_eq!(val(&s, "innodb_io_capacity_max"), "12800");
    assert_eq!(dev_val(&s, "read_ahead_kb", "md127"), "2048");
}

#[test]
fn overrides_replace_add_and_keep() {
    let mut ov = none();
    ov.insert("innodb_io_capacity".into(), "3000".into());
    ov.insert("queue.scheduler".into(), "kyber".into());
    ov.insert("transparent_hugepage".into(), "keep".into());
    let s = compute(&azure_mysql(), &ov, true).unwrap();
    let io = s.get("innodb_io_capacity").unwrap();
    assert_eq!(io.value, "3000");
    assert_eq!(io.source, Source::Override);
    assert!(io.reason.starts_with("profile override"), "{}", io.reason);
    assert!(io.reason.contains("7500"), "{}", io.reason);
    assert_eq!(dev_val(&s, "queue.scheduler", "sdc"), "kyber");
    assert_eq!(dev_val(&s, "queue.scheduler", "sdd"), "kyber");
    // kyber is a scheduler: nr_requests follows it.
    assert_eq!(dev_val(&s, "queue.nr_requests", "sdc"), "256");
    assert!(s.get("transparent_hugepage").is_none());
    assert!(s
        .notes
        .iter()
        .any(|n| n.contains("transparent_hugepage left untouched")));
    // Kebab-case spelling (TOML style) names the same knob.
    let mut ov = none();
    ov.insert("innodb-io-capacity".into(), "3100".into());
    ov.insert("queue.rq-affinity".into(), "2".into());
    let s = compute(&azure_mysql(), &ov, true).unwrap();
    assert_eq!(val(&s, "innodb_io_capacity"), "3100");
    assert_eq!(dev_val(&s, "queue.rq_affinity", "sdd"), "2");
    // An override adds a knob that could not be computed.
    let mut ov = none();
    ov.insert("innodb_io_capacity".into(), "800".into());
    ov.insert("innodb_redo_log_capacity".into(), "2G".into());
    let s = compute(&single_rotational(), &ov, true).unwrap();
    assert_eq!(val(&s, "innodb_io_capacity"), "800");
    assert_eq!(val(&s, "innodb_redo_log_capacity"), "2G");
    assert!(s
        .get("innodb_io_capacity")
        .unwrap()
        .reason
        .contains("not computed"));
}

#[test]
fn bad_overrides_are_usage_errors() {
    let err = |k: &str, v: &str, f: &TuneFacts| {
        let mut ov = none();
        ov.insert(k.into(), v.into());
        let e = compute(f, &ov, true).unwrap_err();
        assert_eq!(e.code(), crate::exit::USAGE);
        e.to_string()
    };
    let f = azure_mysql();
    assert!(
        err("innodb_io_capacityy", "1", &f).contains("unknown tuning knob `innodb_io_capacityy`")
    );
    assert!(err("vm.swappiness", "low", &f).contains("non-negative integer"));
    assert!(err("queue.scheduler", "noop", &f).contains("one of none, mq-deadline"));
    assert!(err("mount.options", "noatime,nobarrier", &f).contains("4.19"));
    assert!(err("shared_buffers", "8GB", &f).contains("does not apply"));
    assert!(err("innodb_buffer_pool_size", "8G\n[x]", &f).contains("not valid"));
    // ext4 may use nobarrier (Azure documents it); XFS never.
    let mut ov = none();
    ov.insert("mount.options".into(), "noatime,nobarrier".into());
    assert!(compute(&single_rotational(), &ov, true).is_ok());
}

#[test]
fn tuning_off_means_no_knobs() {
    let mut ov = none();
    ov.insert("innodb_io_capacity".into(), "3000".into());
    let s = compute(&azure_mysql(), &ov, false).unwrap();
    assert!(!s.enabled);
    assert!(s.knobs.is_empty());
    assert!(render_all(&s, &azure_mysql()).is_empty());
}

#[test]
fn uuid_forms() {
    assert_eq!(
        dashed_uuid("3a9a4a6e:1f2b4c3d:8e9f0a1b:2c3d4e5f"),
        "3a9a4a6e-1f2b-4c3d-8e9f-0a1b2c3d4e5f"
    );
    assert_eq!(dashed_uuid(MD_UUID), MD_UUID);
}

#[test]
fn udev_rules_match_by_array_uuid() {
    let f = azure_mysql();
    let s = compute(&f, &none(), true).unwrap();
    let r = render_udev(&s, &f).unwrap();
    let rules: Vec<&str> = r
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(
        rules,
        vec![
            r#"ACTION!="add|change", GOTO="dbhost_end""#,
            r#"SUBSYSTEM!="block", GOTO="dbhost_end""#,
            r#"ENV{DEVTYPE}!="disk", GOTO="dbhost_end""#,
            r#"KERNEL=="sd*|vd*|xvd*|nvme*n*", ENV{ID_FS_TYPE}!="?*", IMPORT{builtin}="blkid""#,
            r#"ENV{ID_FS_TYPE}=="linux_raid_member", ENV{ID_FS_UUID}=="3a9a4a6e-1f2b-4c3d-8e9f-0a1b2c3d4e5f", ATTR{queue/rotational}="0", ATTR{queue/scheduler}="none", ATTR{queue/rq_affinity}="1", ATTR{queue/add_random}="0""#,
            r#"KERNEL=="md*", ATTR{md/uuid}=="3a9a4a6e-1f2b-4c3d-8e9f-0a1b2c3d4e5f", ATTR{queue/read_ahead_kb}="1024""#,
            r#"LABEL="dbhost_end""#,
        ]
    );
    assert!(!r.contains("KERNEL==\"sdc\""));
}

#[test]
fn udev_rules_do_not_change_when_members_come_back_in_another_order_or_names() {
    // tune-persist: after a reboot the members were sdb, sda instead of sda, sdb, and the array
    // could come back under another md number; the persisted rules must read the same, or
    // every apply after a reboot rewrites them (not idempotent).
    let f = azure_mysql();
    let s = compute(&f, &none(), true).unwrap();
    let before = render_udev(&s, &f).unwrap();
    let mut g = f.clone();
    g.members.reverse();
    g.members[0].name = "sdx".into();
    g.md.as_mut().unwrap().name = "md126".into();
    let s2 = compute(&g, &none(), true).unwrap();
    assert_eq!(render_udev(&s2, &g).unwrap(), before);
}

#[test]
fn fs_uuid_read_from_the_device_when_udev_has_no_link() {
    let d = tempfile::tempdir().unwrap();
    let h = Host::with_root(d.path());
    fs::create_dir_all(h.dev("")).unwrap();
    let mut head = vec![0u8; 4096];
    head[0..4].copy_from_slice(b"XFSB");
    head[32..48].copy_from_slice(&[
        0x4b, 0x49, 0xec, 0x2e, 0x1d, 0x92, 0x4e, 0xd6, 0x99, 0x64, 0xc0, 0xce, 0x8e, 0xda, 0x53,
        0x31,
    ]);
    fs::write(h.dev("md127"), &head).unwrap();
    assert_eq!(
        find_fs_uuid(&h, "md127").as_deref(),
        Some("4b49ec2e-1d92-4ed6-9964-c0ce8eda5331")
    );
    assert_eq!(find_fs_uuid(&h, "md126"), None);
    // A by-uuid link wins (and a dangling entry is skipped, not fatal).
    fs::create_dir_all(h.dev("disk/by-uuid")).unwrap();
    std::os::unix::fs::symlink("../../md127", h.dev("disk/by-uuid/1111-2222")).unwrap();
    assert_eq!(find_fs_uuid(&h, "md127").as_deref(), Some("1111-2222"));
}

#[test]
fn udev_rules_single_disk_by_fs_uuid_and_fallback_by_name() {
    let f = single_rotational();
    let s = compute(&f, &none(), true).unwrap();
    let r = render_udev(&s, &f).unwrap();
    assert!(r.contains(
        r#"ENV{ID_FS_UUID}=="0d6c3a52-58c8-4a0e-9a43-3b5bb2d7e0a1", ATTR{queue/scheduler}="mq-deadline", ATTR{queue/nr_requests}="256", ATTR{queue/rq_affinity}="1", ATTR{queue/add_random}="0", ATTR{queue/read_ahead_kb}="128""#
    ), "{r}");
    let mut f = single_rotational();
    f.fs_uuid = None;
    let s = compute(&f, &none(), true).unwrap();
    let r = render_udev(&s, &f).unwrap();
    assert!(
        r.contains(r#"KERNEL=="sdb", ATTR{queue/scheduler}="mq-deadline""#),
        "{r}"
    );
    assert!(!r.contains("IMPORT{builtin}"));
}

#[test]
fn sysctl_db_and_thp_files() {
    let f = azure_mysql();
    let s = compute(&f, &none(), true).unwrap();
    let sc = render_sysctl(&s).unwrap();
    let lines: Vec<&str> = sc
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        vec![
            "vm.swappiness = 1",
            "vm.dirty_background_bytes = 67108864",
            "vm.dirty_bytes = 536870912"
        ]
    );
    let (p, db) = render_db(&s, &f).unwrap();
    assert_eq!(p, "/etc/mysql/mysql.conf.d/60-dbhost-tuning.cnf");
    let lines: Vec<&str> = db
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(
        lines,
        vec![
            "[mysqld]",
            "innodb_buffer_pool_size = 24G",
            "innodb_io_capacity = 7500",
            "innodb_io_capacity_max = 10000",
            "innodb_flush_method = O_DIRECT",
            "innodb_flush_neighbors = 0",
            "innodb_redo_log_capacity = 4G",
            "innodb_read_io_threads = 8",
            "innodb_write_io_threads = 8",
        ]
    );
    let pg = postgres_64g();
    let s = compute(&pg, &none(), true).unwrap();
    let (p, db) = render_db(&s, &pg).unwrap();
    assert_eq!(p, "/etc/postgresql/15/main/conf.d/60-dbhost-tuning.conf");
    assert!(!db.contains("[mysqld]"));
    assert!(db.contains("\nshared_buffers = 16GB\n"), "{db}");
    let unit = render_thp_unit(&s).unwrap();
    assert!(unit.contains(
        "ExecStart=/bin/sh -c 'echo never > /sys/kernel/mm/transparent_hugepage/enabled'"
    ));
    assert!(unit.contains("WantedBy=basic.target"));
    assert!(unit.contains("Before=basic.target mysql.service mariadb.service postgresql.service"));
}

// ---------------------------------------------------------------- fake host tree

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel))
        .unwrap()
        .trim()
        .to_string()
}

/// A host like `azure_mysql()`: md127 over sdc + sdd, XFS at /datadrive, MySQL 8.0.39 installed.
fn fake_azure_host() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "proc/meminfo",
        "MemTotal:       33554432 kB\nMemFree:  1 kB\n",
    );
    write(r, "sys/devices/system/cpu/online", "0-7\n");
    write(r, "proc/sys/kernel/osrelease", "6.1.0-28-amd64\n");
    for d in ["sdc", "sdd"] {
        let q = format!("sys/block/{d}/queue");
        write(r, &format!("{q}/scheduler"), "[mq-deadline] none\n");
        write(r, &format!("{q}/rotational"), "1\n");
        write(r, &format!("{q}/nr_requests"), "256\n");
        write(r, &format!("{q}/rq_affinity"), "1\n");
        write(r, &format!("{q}/add_random"), "1\n");
        write(r, &format!("{q}/read_ahead_kb"), "128\n");
        fs::create_dir_all(r.join(format!("sys/block/{d}/mq/0"))).unwrap();
        fs::create_dir_all(r.join(format!("sys/block/{d}/mq/1"))).unwrap();
    }
    write(r, "sys/block/md127/md/level", "raid0\n");
    write(r, "sys/block/md127/md/array_state", "clean\n");
    write(r, "sys/block/md127/md/uuid", &format!("{MD_UUID}\n"));
    write(r, "sys/block/md127/md/chunk_size", "524288\n");
    write(r, "sys/block/md127/size", "2147483648\n"); // 1 TiB
    write(r, "sys/block/md127/md/dev-sdd/slot", "1\n");
    write(r, "sys/block/md127/md/dev-sdc/slot", "0\n");
    write(r, "sys/block/md127/queue/read_ahead_kb", "2048\n");
    write(
        r,
        "sys/kernel/mm/transparent_hugepage/enabled",
        "always [madvise] never\n",
    );
    write(r, "proc/sys/vm/swappiness", "60\n");
    write(r, "proc/sys/vm/dirty_background_bytes", "0\n");
    write(r, "proc/sys/vm/dirty_bytes", "0\n");
    write(
        r,
        "proc/mounts",
        "/dev/sda1 / ext4 rw,relatime 0 0\n/dev/md127 /datadrive xfs rw,noatime,attr2,inode64 0 0\n",
    );
    fs::create_dir_all(r.join("dev/disk/by-uuid")).unwrap();
    std::os::unix::fs::symlink(
        "../../md127",
        r.join("dev/disk/by-uuid/0d6c3a52-58c8-4a0e-9a43-3b5bb2d7e0a1"),
    )
    .unwrap();
    fs::create_dir_all(r.join("etc/mysql/mysql.conf.d")).unwrap();
    write(
        r,
        "var/lib/dpkg/status",
        "Package: mysql-server-core-8.0\nStatus: install ok installed\nVersion: 8.0.39-0ubuntu0.22.04.1\n\n\
         Package: mariadb-server\nStatus: deinstall ok config-files\nVersion: 1:10.6.1\n",
    );
    d
}

fn azure_hints() -> GatherHints {
    GatherHints {
        default_caps: DiskCaps {
            mbps: Some(200),
            iops: Some(5000),
            account_type: Some("Premium_LRS".into()),
            source: Some("azure-imds".into()),
        },
        ..Default::default()
    }
}

#[test]
fn gather_from_fake_tree_matches_hand_built_facts() {
    let d = fake_azure_host();
    let host = Host::with_root(d.path());
    let mut f = gather(&host, &azure_hints()).unwrap();
    // The fake tree lists schedulers in kernel order.
    assert_eq!(f.members[0].schedulers, vec!["mq-deadline", "none"]);
    f.members
        .iter_mut()
        .for_each(|m| m.schedulers = member("x").schedulers);
    assert_eq!(f, azure_mysql());
}

#[test]
fn gather_follows_device_links_and_explicit_disks() {
    let d = fake_azure_host();
    let r = d.path();
    fs::create_dir_all(r.join("dev/md")).unwrap();
    fs::write(r.join("dev/md127"), "").unwrap();
    std::os::unix::fs::symlink("../md127", r.join("dev/md/data")).unwrap();
    let host = Host::with_root(r);
    let hints = GatherHints {
        md: Some("/dev/md/data".into()),
        ..azure_hints()
    };
    let f = gather(&host, &hints).unwrap();
    assert_eq!(f.md.as_ref().unwrap().name, "md127");
    assert_eq!(f.members.len(), 2);
    // Explicit disks, no array: one disk → it is the filesystem device.
    let hints = GatherHints {
        disks: vec!["/dev/sdd".into()],
        ..azure_hints()
    };
    let f = gather(&host, &hints).unwrap();
    assert!(f.md.is_none());
    assert_eq!(f.members[0].name, "sdd");
    assert_eq!(f.mount_point, None);
}

#[test]
fn gather_errors_name_what_is_missing() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "proc/meminfo", "MemTotal: 1024 kB\n");
    write(d.path(), "sys/devices/system/cpu/online", "0\n");
    let host = Host::with_root(d.path());
    let e = gather(&host, &GatherHints::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no data disks to tune"), "{e}");
    let hints = GatherHints {
        disks: vec!["sdz".into()],
        ..Default::default()
    };
    let e = gather(&host, &hints).unwrap_err().to_string();
    assert!(e.contains("disk sdz not found"), "{e}");
}

#[test]
fn apply_on_fake_tree_is_idempotent() {
    let d = fake_azure_host();
    let r = d.path();
    let host = Host::with_root(r);
    let exec = FakeExec::new();
    let facts = gather(&host, &azure_hints()).unwrap();
    let set = compute(&facts, &none(), true).unwrap();

    let before = observe(&host, &set);
    let sched = before
        .knobs
        .iter()
        .find(|k| k.knob.name == "queue.scheduler")
        .unwrap();
    assert_eq!(sched.current.as_deref(), Some("mq-deadline"));
    assert!(!sched.in_effect);
    let mount = before
        .knobs
        .iter()
        .find(|k| k.knob.name == "mount.options")
        .unwrap();
    assert!(mount.in_effect, "noatime already mounted");

    let first = apply(&host, &exec, &set, &facts).unwrap();
    assert!(first.changed);
    assert_eq!(read(r, "sys/block/sdc/queue/scheduler"), "none");
    assert_eq!(read(r, "sys/block/sdd/queue/rotational"), "0");
    assert_eq!(read(r, "sys/block/sdd/queue/add_random"), "0");
    assert_eq!(read(r, "sys/block/md127/queue/read_ahead_kb"), "1024");
    assert_eq!(read(r, "proc/sys/vm/swappiness"), "1");
    assert_eq!(read(r, "proc/sys/vm/dirty_bytes"), "536870912");
    assert_eq!(
        read(r, "sys/kernel/mm/transparent_hugepage/enabled"),
        "never"
    );
    assert!(read(r, "etc/udev/rules.d/60-dbhost.rules").contains("ENV{ID_FS_UUID}"));
    assert!(read(r, "etc/sysctl.d/60-dbhost.conf").contains("vm.swappiness = 1"));
    assert!(read(r, "etc/mysql/mysql.conf.d/60-dbhost-tuning.cnf")
        .contains("innodb_io_capacity = 7500"));
    assert!(read(r, "etc/systemd/system/dbhost-thp.service").contains("echo never"));
    assert_eq!(
        fs::read_link(r.join("etc/systemd/system/basic.target.wants/dbhost-thp.service")).unwrap(),
        Path::new("/etc/systemd/system/dbhost-thp.service")
    );
    assert!(first
        .files
        .iter()
        .all(|f| f.outcome == FileOutcome::Written));
    let out = |rep: &super::TuneReport, name: &str| {
        rep.knobs
            .iter()
            .find(|k| k.knob.name == name)
            .unwrap()
            .outcome
            .unwrap()
    };
    assert_eq!(out(&first, "queue.scheduler"), Outcome::Changed);
    assert_eq!(out(&first, "innodb_io_capacity"), Outcome::Changed);
    // The udev file was written, so even the already-right rq_affinity counts as changed
    // (its persistence changed).
    assert_eq!(out(&first, "queue.rq_affinity"), Outcome::Changed);
    // The mount already has noatime and fstab is the filesystem step's: nothing to do.
    assert_eq!(out(&first, "mount.options"), Outcome::Unchanged);
    assert!(
        exec.calls().is_empty(),
        "no remount needed: {:?}",
        exec.calls()
    );
    let io = first
        .knobs
        .iter()
        .find(|k| k.knob.name == "innodb_io_capacity")
        .unwrap();
    assert_eq!(io.current, None, "no drop-in before the first run");

    let second = apply(&host, &exec, &set, &facts).unwrap();
    assert!(!second.changed, "{second:#?}");
    assert!(second
        .files
        .iter()
        .all(|f| f.outcome == FileOutcome::Unchanged));
    for k in &second.knobs {
        assert_eq!(k.outcome, Some(Outcome::Unchanged), "{}", k.knob.name);
        assert!(k.in_effect, "{}", k.knob.name);
    }
    let io = second
        .knobs
        .iter()
        .find(|k| k.knob.name == "innodb_io_capacity")
        .unwrap();
    assert_eq!(io.current.as_deref(), Some("7500"));

    // Re-gathering after apply gives the same set (rotational now reads 0 and needs no fix,
    // so that knob disappears — but the rest is stable and unchanged).
    let facts2 = gather(&host, &azure_hints()).unwrap();
    let set2 = compute(&facts2, &none(), true).unwrap();
    assert!(set2.get("queue.rotational").is_none());
    assert_eq!(set2.knobs.len(), set.knobs.len() - 2);
}

#[test]
fn apply_overrides_then_tuning_off_removes_files() {
    let d = fake_azure_host();
    let r = d.path();
    let host = Host::with_root(r);
    let exec = FakeExec::new();
    let facts = gather(&host, &azure_hints()).unwrap();
    apply(
        &host,
        &exec,
        &compute(&facts, &none(), true).unwrap(),
        &facts,
    )
    .unwrap();

    let mut ov = none();
    ov.insert("vm.swappiness".into(), "10".into());
    ov.insert("transparent_hugepage".into(), "keep".into());
    let set = compute(&facts, &ov, true).unwrap();
    let rep = apply(&host, &exec, &set, &facts).unwrap();
    assert!(rep.changed);
    assert_eq!(read(r, "proc/sys/vm/swappiness"), "10");
    assert!(read(r, "etc/sysctl.d/60-dbhost.conf").contains("vm.swappiness = 10"));
    assert!(!r.join("etc/systemd/system/dbhost-thp.service").exists());
    assert!(rep
        .files
        .iter()
        .any(|f| f.path.ends_with("dbhost-thp.service") && f.outcome == FileOutcome::Removed));
    let sw = rep
        .knobs
        .iter()
        .find(|k| k.knob.name == "vm.swappiness")
        .unwrap();
    assert_eq!(sw.current.as_deref(), Some("1"));
    assert_eq!(sw.outcome, Some(Outcome::Changed));
    assert!(!apply(&host, &exec, &set, &facts).unwrap().changed);

    let off = compute(&facts, &ov, false).unwrap();
    let rep = apply(&host, &exec, &off, &facts).unwrap();
    assert!(rep.changed);
    assert!(rep.knobs.is_empty());
    for f in [
        "etc/udev/rules.d/60-dbhost.rules",
        "etc/sysctl.d/60-dbhost.conf",
        "etc/mysql/mysql.conf.d/60-dbhost-tuning.cnf",
    ] {
        assert!(!r.join(f).exists(), "{f} should be removed");
    }
    let rep = apply(&host, &exec, &off, &facts).unwrap();
    assert!(!rep.changed);
    assert!(rep.files.is_empty());
}

#[test]
fn apply_reports_missing_attribute_and_unmounted_fs() {
    let d = fake_azure_host();
    let r = d.path();
    fs::remove_file(r.join("sys/block/sdc/queue/add_random")).unwrap();
    write(r, "proc/mounts", "/dev/sda1 / ext4 rw,relatime 0 0\n");
    let host = Host::with_root(r);
    let mut facts = gather(&host, &azure_hints()).unwrap();
    facts.mount_point = Some("/datadrive".into());
    let set = compute(&facts, &none(), true).unwrap();
    let rep = apply(&host, &FakeExec::new(), &set, &facts).unwrap();
    let ar = rep
        .knobs
        .iter()
        .find(|k| k.knob.name == "queue.add_random" && k.knob.device.as_deref() == Some("sdc"))
        .unwrap();
    assert!(ar.note.as_deref().unwrap().contains("does not exist"));
    let rep = apply(&host, &FakeExec::new(), &set, &facts).unwrap();
    let ar = rep
        .knobs
        .iter()
        .find(|k| k.knob.name == "queue.add_random" && k.knob.device.as_deref() == Some("sdc"))
        .unwrap();
    assert_eq!(ar.outcome, Some(Outcome::NotApplied));
    let m = rep
        .knobs
        .iter()
        .find(|k| k.knob.name == "mount.options")
        .unwrap();
    assert_eq!(m.outcome, Some(Outcome::NotApplied));
    assert!(!rep.changed);
}

#[test]
fn later_config_files_that_win_are_reported() {
    let d = fake_azure_host();
    let r = d.path();
    write(
        r,
        "etc/sysctl.d/99-sysctl.conf",
        "# local\nvm.swappiness=10\nvm/dirty_bytes = 536870912\n",
    );
    write(r, "etc/sysctl.d/10-early.conf", "vm.swappiness = 30\n");
    write(
        r,
        "etc/mysql/mysql.conf.d/mysqld.cnf",
        "[mysqld]\nuser = mysql\ninnodb-io-capacity = 200\n[client]\ninnodb_flush_method = x\n",
    );
    let host = Host::with_root(r);
    let facts = gather(&host, &azure_hints()).unwrap();
    let set = compute(&facts, &none(), true).unwrap();
    let notes = observe(&host, &set).notes;
    let relevant: Vec<&String> = notes
        .iter()
        .filter(|n| n.contains("is read after"))
        .collect();
    assert_eq!(relevant.len(), 2, "{notes:#?}");
    assert!(relevant[0].starts_with("vm.swappiness = 10 in /etc/sysctl.d/99-sysctl.conf"));
    assert!(relevant[1].starts_with(
        "innodb_io_capacity = 200 in /etc/mysql/mysql.conf.d/mysqld.cnf is read after \
         /etc/mysql/mysql.conf.d/60-dbhost-tuning.cnf"
    ));
    let rep = apply(&host, &FakeExec::new(), &set, &facts).unwrap();
    assert_eq!(
        rep.notes
            .iter()
            .filter(|n| n.contains("is read after"))
            .count(),
        2
    );
}

/// The redo log is created whole at the server's next start on the data device: on a small
/// array it is capped at 1/8 of the device, never below 128 MiB.
#[test]
fn redo_log_is_capped_by_the_data_device() {
    let mut f = qemu_mariadb();
    f.data_bytes = Some(100 * GIB);
    let s = compute(&f, &none(), true).unwrap();
    assert_eq!(
        val(&s, "innodb_log_file_size"),
        "1G",
        "room enough: the rule"
    );
    f.data_bytes = Some(2 * GIB);
    let s = compute(&f, &none(), true).unwrap();
    assert_eq!(val(&s, "innodb_log_file_size"), "256M");
    assert!(
        s.get("innodb_log_file_size")
            .unwrap()
            .reason
            .contains("capped at 1/8 of the 2 GiB data device"),
        "{}",
        s.get("innodb_log_file_size").unwrap().reason
    );
    f.data_bytes = Some(512 * MIB);
    let s = compute(&f, &none(), true).unwrap();
    assert_eq!(val(&s, "innodb_log_file_size"), "128M");
    // MySQL 8.0.30+: innodb_redo_log_capacity, same cap
    let mut m = azure_mysql();
    m.data_bytes = Some(2 * GIB);
    let s = compute(&m, &none(), true).unwrap();
    assert_eq!(val(&s, "innodb_redo_log_capacity"), "256M");
}
