//! Fuzz the parsers of text the kernel, udev, dpkg and mdadm hand dbhost: the mount tables
//! (`/proc/self/mounts`, `mountinfo`, `/proc/swaps`), meminfo, CPU lists, kernel releases,
//! sysfs choice attributes, SCSI VPD page 0x80, the dpkg status file, mdadm's map file, and
//! fstab (dbhost edits it in place). Beyond "no panic": text without a backslash unescapes to
//! itself, parsed fields hold no whitespace, and the fstab edit converges in one run and is
//! undone by its removal.
#![no_main]

use dbhost::fs::fstab::{self, Change, Entry};
use dbhost::fs::{mounts, FsType};
use dbhost::tune::facts;
use libfuzzer_sys::fuzz_target;

fn entry() -> Entry {
    Entry {
        fs_uuid: "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9".into(),
        mount_point: "/datadrive".into(),
        fs: FsType::Xfs,
        extra_options: vec!["logbsize=256k".into()],
        device_timeout: "120s".into(),
        owner: "dbdata".into(),
    }
}

fn fstab_props(text: &str) {
    let e = entry();
    let Ok((once, _)) = fstab::ensure(text, &e) else {
        return;
    };
    // Unchanged is what makes the step skip its write: the edit converges in one run.
    let (_, again) = fstab::ensure(&once, &e).expect("our own entry is no conflict");
    assert_eq!(again, Change::Unchanged, "second ensure changed:\n{once}");
    let (removed, changed) = fstab::remove(&once, &e.owner);
    assert!(changed, "remove found nothing after ensure");
    assert!(
        removed.lines().all(|l| fstab::parse_line(l)
            .map(|p| fstab::owner_of(&p).as_deref() != Some("dbdata"))
            .unwrap_or(true)),
        "an entry of ours survived removal:\n{removed}"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Some(s) = dbhost::detect::vpd_pg80_serial(data) {
        assert!(!s.is_empty() && s.trim() == s);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !text.contains('\\') {
        assert_eq!(mounts::unescape(text), text);
    }
    for m in mounts::parse(text) {
        assert!(!m.fstype.is_empty() && !m.fstype.contains(char::is_whitespace));
        assert!(!m.options.contains(char::is_whitespace));
    }
    for m in mounts::parse_mountinfo(text) {
        assert!(!m.devnum.contains(char::is_whitespace));
    }
    for s in mounts::parse_swaps(text) {
        assert!(!s.kind.is_empty());
    }
    let _ = facts::parse_meminfo_total(text);
    if let Some(n) = facts::parse_cpu_list(text) {
        assert!(n > 0);
    }
    let _ = facts::parse_kernel(text);
    for s in facts::parse_schedulers(text) {
        assert!(!s.contains(char::is_whitespace));
    }
    let _ = facts::selected_choice(text);
    let _ = facts::parse_pkg_version(text);
    for (name, version) in facts::parse_dpkg_status(text) {
        assert_eq!(name.trim(), name);
        assert_eq!(version.trim(), version);
    }
    let line = "md127 1.2 01020304:05060708:090a0b0c:0d0e0f10 /dev/md/dbdata\n";
    let map = dbhost::md::model::map_update(text, "md127", Some(line));
    let ours = map
        .lines()
        .filter(|l| l.split_whitespace().next() == Some("md127"))
        .count();
    assert_eq!(ours, 1, "map_update left {ours} lines for md127:\n{map}");
    fstab_props(text);
});
