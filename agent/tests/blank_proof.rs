//! "Blank means proven blank", as a user meets it: a data disk holding exFAT and one holding
//! bytes no format claims are refused by `detect`, `plan` and `apply --dry-run`, in text and in
//! JSON, with the `--wipe` hint; `debug probe` gives the same verdicts on image files.

mod common;

use common::{copy_tree, fixture};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dbhost"));
    c.env_remove("DBHOST_IMDS_ENDPOINT");
    c
}

/// An exFAT boot sector (OEM name at 3, the 0x55AA marker).
fn exfat_head() -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    b[0..3].copy_from_slice(&[0xeb, 0x76, 0x90]);
    b[3..11].copy_from_slice(b"EXFAT   ");
    b[510] = 0x55;
    b[511] = 0xaa;
    b
}

/// 4 MiB of bytes no format claims (xorshift; the first byte is non-zero).
fn noise() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..4 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8 | 1
        })
        .collect()
}

/// The QEMU fixture with data disk sda holding exFAT and sdb holding noise.
fn host() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&fixture("qemu-virtio-scsi"), tmp.path());
    std::fs::write(tmp.path().join("dev/sda"), exfat_head()).unwrap();
    std::fs::write(tmp.path().join("dev/sdb"), noise()).unwrap();
    tmp
}

/// Exit code and stdout (refusals in text go to stderr: appended after stdout).
fn run(c: &mut Command) -> (Option<i32>, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().unwrap();
    let mut s = String::from_utf8(stdout).unwrap();
    if status.code() != Some(0) || !s.trim_start().starts_with(['{', '[']) {
        s.push_str(&String::from_utf8(stderr).unwrap());
    }
    (status.code(), s)
}

const EXFAT: &str =
    "holds a exfat signature at byte 3 (wipe it explicitly with --wipe if it is really unused)";
const NOISE: &str = "holds unrecognized data (non-zero bytes at offset 0) (wipe it explicitly with --wipe if it is really unused)";

#[test]
fn detect_refuses_exfat_and_unrecognized_data_text_and_json() {
    let h = host();
    let (code, text) = run(bin().args(["detect", "--sysroot"]).arg(h.path()));
    assert_eq!(code, Some(0), "{text}");
    let row = |n: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .unwrap_or_else(|| panic!("no row {n}: {text}"))
            .to_string()
    };
    assert!(row("sda").contains(EXFAT), "{text}");
    assert!(row("sdb").contains(NOISE), "{text}");

    let (_, json) = run(bin()
        .args(["--output", "json", "detect", "--sysroot"])
        .arg(h.path()));
    let inv: serde_json::Value = serde_json::from_str(&json).unwrap();
    let disk = |n: &str| {
        inv["disks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(
        disk("sda")["refusals"],
        serde_json::json!([{"reason": "holds_signature", "kind": "exfat", "offset": 3}])
    );
    assert_eq!(
        disk("sdb")["refusals"],
        serde_json::json!([{"reason": "unrecognized_data", "offset": 0}])
    );
    assert_eq!(disk("sdb")["nonzero_at"], 0);
    // the untouched QEMU NVMe data disk is still proven blank
    assert_eq!(disk("nvme0n1")["refusals"], serde_json::json!([]));
    assert_eq!(disk("nvme0n1")["nonzero_at"], serde_json::Value::Null);
}

#[test]
fn plan_and_apply_refuse_them_text_and_json() {
    let h = host();
    let profile = fixture("../../../profiles/qemu-dev.toml");
    for cmd in [&["plan"][..], &["apply", "--dry-run"]] {
        let (code, text) = run(bin()
            .args(cmd)
            .arg("--profile")
            .arg(&profile)
            .arg("--sysroot")
            .arg(h.path()));
        assert_eq!(code, Some(3), "{cmd:?}: {text}");
        assert!(text.contains("hold data or are in use: sda, sdb"), "{text}");
        assert!(
            text.contains(EXFAT) && text.contains(NOISE),
            "{cmd:?}: {text}"
        );

        let (code, json) = run(bin()
            .args(["--output", "json"])
            .args(cmd)
            .arg("--profile")
            .arg(&profile)
            .arg("--sysroot")
            .arg(h.path()));
        assert_eq!(code, Some(3), "{cmd:?}: {json}");
        let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        let reasons = |n: &str| {
            v["refusal"]["disks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["name"] == n)
                .unwrap()["reasons"]
                .clone()
        };
        assert_eq!(
            reasons("sda"),
            serde_json::json!([{"reason": "holds_signature", "kind": "exfat", "offset": 3}]),
            "{cmd:?}"
        );
        assert_eq!(
            reasons("sdb"),
            serde_json::json!([{"reason": "unrecognized_data", "offset": 0}]),
            "{cmd:?}"
        );
    }
}

#[test]
fn debug_probe_on_image_files() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |n: &str, head: &[u8], size: u64| {
        let p = tmp.path().join(n);
        std::fs::write(&p, head).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(size)
            .unwrap();
        p
    };
    let zero = write("zero.img", &[], 64 << 20);
    let exfat = write("exfat.img", &exfat_head(), 64 << 20);
    let noise = write("noise.img", &noise(), 64 << 20);
    let (code, json) = run(bin()
        .args(["--output", "json", "debug", "probe"])
        .args([&zero, &exfat, &noise]));
    assert_eq!(code, Some(0), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let verdicts: Vec<(&str, Vec<&str>)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["verdict"].as_str().unwrap(),
                r["signatures"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["kind"].as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("blank", vec![]),
            ("refused", vec!["exfat"]),
            ("refused", vec![])
        ]
    );
    assert_eq!(v[2]["refusals"][0]["reason"], "unrecognized_data");

    let (code, text) = run(bin().args(["debug", "probe"]).arg(&noise));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(NOISE), "{text}");
    let (code, _) = run(bin()
        .args(["debug", "probe"])
        .arg(tmp.path().join("missing.img")));
    assert_eq!(code, Some(1));
}
