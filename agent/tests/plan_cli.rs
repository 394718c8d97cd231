//! `dbhost plan` and `dbhost profile check` as a user runs them: exit codes and output.
//! Inventories are given with `--inventory` (the JSON `dbhost detect --output json` prints), so
//! these tests do not depend on a host tree.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dbhost"))
}

fn profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles")
}

const GIB: u64 = 1 << 30;

fn disk(
    name: &str,
    lun: Option<u32>,
    gib: u64,
    cache: &str,
    refusals: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "name": name, "devnum": "8:16", "size_bytes": gib * GIB,
        "logical_block_size": 512, "physical_block_size": 4096, "rotational": false,
        "read_only": false, "removable": false, "vendor": "Msft", "model": "Virtual Disk",
        "serial": null, "transport": "scsi", "by_id": [], "by_path": [],
        "scsi_address": null, "nvme_nsid": null, "partitions": [], "holders": [],
        "mountpoints": [], "swap": false, "write_cache": null, "discard_granularity": null,
        "role": {"kind": if refusals.to_string().contains("os_disk") { "os" } else { "data" }},
        "lun": lun, "cache_mode": cache, "signatures": [], "md": null,
        "missing_attributes": [], "refusals": refusals,
    })
}

fn inventory(dir: &Path, disks: Vec<serde_json::Value>) -> PathBuf {
    let inv = serde_json::json!({
        "schema": 1, "platform": "azure", "kernel": "6.1.0", "disks": disks,
        "arrays": [], "imds": "ok",
    });
    let p = dir.join("inv.json");
    std::fs::write(&p, serde_json::to_string_pretty(&inv).unwrap()).unwrap();
    p
}

#[test]
fn plan_creates_raid0_from_two_blank_disks() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = inventory(
        tmp.path(),
        vec![
            disk(
                "sda",
                None,
                30,
                "readwrite",
                serde_json::json!([{"reason": "os_disk"}]),
            ),
            disk("sdc", Some(0), 512, "none", serde_json::json!([])),
            disk("sdd", Some(1), 512, "none", serde_json::json!([])),
        ],
    );
    let out = bin()
        .args(["plan", "--profile"])
        .arg(profiles().join("azure-mysql.toml"))
        .arg("--inventory")
        .arg(&inv)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("disks: create a new array from 2 blank disk(s)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("data offset 264192 sectors"), "{stdout}");

    let out = bin()
        .args(["--output", "json", "plan", "--profile"])
        .arg(profiles().join("azure-mysql.toml"))
        .arg("--inventory")
        .arg(&inv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["result"], "plan");
    assert_eq!(j["plan"]["array"]["usable_bytes"], 1_099_241_095_168u64);
    assert_eq!(j["plan"]["members"][0]["name"], "sdc");
}

#[test]
fn plan_refusal_exits_3_and_lists_every_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = inventory(
        tmp.path(),
        vec![
            disk(
                "sda",
                None,
                30,
                "readwrite",
                serde_json::json!([{"reason": "os_disk"}]),
            ),
            disk("sdc", Some(0), 512, "none", serde_json::json!([])),
            disk("sdd", Some(1), 512, "readonly", serde_json::json!([])),
        ],
    );
    let out = bin()
        .args(["plan", "--profile"])
        .arg(profiles().join("azure-mysql.toml"))
        .arg("--inventory")
        .arg(&inv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("  - the profile needs at least 2 (raid0) disk(s), 1 selected\n"),
        "{stderr}"
    );
    for line in [
        "sdc   0    -       512G  none       blank     selected",
        "sdd   1    -       512G  readonly   excluded  host cache mode ReadOnly is not allowed by the profile",
        "sda   -    -       30G   readwrite  excluded  OS disk",
    ] {
        assert!(stderr.contains(line), "missing {line:?} in\n{stderr}");
    }
    let out = bin()
        .args(["--output", "json", "plan", "--profile"])
        .arg(profiles().join("azure-mysql.toml"))
        .arg("--inventory")
        .arg(&inv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["result"], "refused");
    assert_eq!(j["refusal"]["disks"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_profile_exits_2_with_file_line_col_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p.toml");
    std::fs::write(&p, "version = 1\n[disks]\nplatfrom = \"azure\"\n").unwrap();
    for args in [vec!["profile", "check"], vec!["plan", "--profile"]] {
        let out = bin().args(&args).arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("{}:3:1: unknown field `platfrom`", p.display())),
            "{stderr}"
        );
        assert!(
            stderr.trim_end().ends_with("(key `disks.platfrom`)"),
            "{stderr}"
        );
    }
}

#[test]
fn profile_check_accepts_every_shipped_profile() {
    for name in [
        "azure-mysql.toml",
        "azure-mariadb.toml",
        "single-disk-test.toml",
        "postgresql.toml",
        "qemu-dev.toml",
    ] {
        let out = bin()
            .args(["profile", "check"])
            .arg(profiles().join(name))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(": valid profile (version 1)\n"), "{stdout}");
    }
}

#[test]
fn apply_refusal_in_json_is_one_event_line() {
    // Pipelines read `apply --output json` line by line: a refusal is one more event.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/azure-gen2");
    let out = bin()
        .arg("--sysroot")
        .arg(&fixture)
        .args([
            "--output",
            "json",
            "apply",
            "--dry-run",
            "--wait-disks",
            "0s",
            "--profile",
        ])
        .arg(profiles().join("qemu-dev.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no output");
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"));
    }
    let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
    assert_eq!(last["event"], "refused");
    assert_eq!(last["exit_code"], 3);
    assert_eq!(last["refusal"]["reasons"][0]["reason"], "platform_mismatch");
}
