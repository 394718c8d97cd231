//! Boot-time assembly: dbhost's own oneshot unit (`units/dbhost-assemble.service`), so arrays
//! come back with mdadm absent (MD.md §4.3: nothing else assembles 1.x arrays then), ordered
//! before local filesystems, and harmless when mdadm's udev rules got there first.

use super::array::Outcome;
use super::model::ArrayName;
use crate::host::{atomic_write, CommandSpec, Exec, Host};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Duration;

pub const UNIT_NAME: &str = "dbhost-assemble.service";
const UNIT_TEMPLATE: &str = include_str!("../../units/dbhost-assemble.service");
/// udev rule giving running md arrays their by-uuid/by-label links when mdadm is absent (systemd's
/// persistent-storage rules skip md devices; fstab mounts the data filesystem by UUID).
pub const UDEV_RULE: &str = include_str!("../../units/63-dbhost-md.rules");
/// Where the rule goes, below /etc.
pub const UDEV_RULE_ETC: &str = "udev/rules.d/63-dbhost-md.rules";

/// How the unit runs dbhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootUnitOptions {
    /// Absolute path of the installed dbhost binary.
    pub binary: PathBuf,
    /// Bounded wait for member devices.
    pub wait: Duration,
    /// Arrays that must come up (the ones dbhost created on this host).
    pub expect: Vec<ArrayName>,
}

impl Default for BootUnitOptions {
    fn default() -> Self {
        BootUnitOptions {
            binary: PathBuf::from("/usr/local/sbin/dbhost"),
            wait: Duration::from_secs(90),
            expect: Vec::new(),
        }
    }
}

/// The unit text (pure).
pub fn render_unit(o: &BootUnitOptions) -> String {
    let mut exec = format!(
        "{} assemble --wait {}s",
        o.binary.display(),
        o.wait.as_secs()
    );
    for e in &o.expect {
        // ArrayName admits only [A-Za-z0-9_.-]: safe in a unit command line.
        exec.push_str(&format!(" --expect {e}"));
    }
    UNIT_TEMPLATE
        .replace("@EXEC_START@", &exec)
        .replace("@TIMEOUT@", &format!("{}s", o.wait.as_secs() + 30))
}

/// Write the unit atomically and enable it (read-compare-write: a second run is `Unchanged`).
/// On a non-live host root (an image) `systemctl --root` enables it offline.
pub fn install_boot_unit(
    host: &Host,
    exec: &dyn Exec,
    opts: &BootUnitOptions,
) -> Result<Outcome<PathBuf>> {
    let path = host.etc(&format!("systemd/system/{UNIT_NAME}"));
    let text = render_unit(opts);
    let mut changed = atomic_write(&path, text.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", path.display()))?;
    let rule = host.etc(UDEV_RULE_ETC);
    if atomic_write(&rule, UDEV_RULE.as_bytes(), 0o644)
        .with_context(|| format!("writing {}", rule.display()))?
    {
        changed = true;
        if host.is_live() {
            // Links for arrays running now, not only from the next boot.
            exec.run(&CommandSpec::new("udevadm").args(["control", "--reload"]))?;
            exec.run(&CommandSpec::new("udevadm").args([
                "trigger",
                "--action=change",
                "--subsystem-match=block",
                "--sysname-match=md*",
            ]))?;
        }
    }
    let root: Vec<String> = if host.is_live() {
        vec![]
    } else {
        vec![format!("--root={}", host.root().display())]
    };
    if changed && host.is_live() {
        exec.run(&CommandSpec::new("systemctl").arg("daemon-reload"))?;
    }
    let state = exec.output(
        &CommandSpec::new("systemctl")
            .args(root.clone())
            .args(["is-enabled", UNIT_NAME]),
    )?;
    if state.stdout.trim() != "enabled" {
        exec.run(
            &CommandSpec::new("systemctl")
                .args(root)
                .args(["enable", UNIT_NAME]),
        )?;
        changed = true;
    }
    let abs = host.unroot(&path);
    Ok(if changed {
        Outcome::Changed(abs)
    } else {
        Outcome::Unchanged(abs)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{ExecOutput, FakeExec};

    #[test]
    fn unit_text() {
        let o = BootUnitOptions {
            expect: vec![ArrayName::new("data").unwrap()],
            ..Default::default()
        };
        let t = render_unit(&o);
        assert!(t.contains("ExecStart=/usr/local/sbin/dbhost assemble --wait 90s --expect data\n"));
        assert!(t.contains("DefaultDependencies=no"));
        assert!(t.contains("Before=local-fs-pre.target"));
        assert!(t.contains("TimeoutStartSec=120s"));
        assert!(t.contains("Type=oneshot"));
        assert!(!t.contains('@'), "all placeholders replaced");
    }

    #[test]
    fn udev_rule_links_running_md_filesystems_by_uuid() {
        let r = UDEV_RULE;
        assert!(r.contains(r#"KERNEL!="md*", GOTO="dbhost_md_end""#));
        assert!(r.contains(r#"ATTR{md/array_state}=="clear*|inactive", GOTO="dbhost_md_end""#));
        assert!(r.contains(r#"IMPORT{builtin}="blkid""#));
        assert!(r.contains(r#"SYMLINK+="disk/by-uuid/$env{ID_FS_UUID_ENC}""#));
        // Every GOTO has its label, and the label comes after every GOTO.
        let label = r.find(r#"LABEL="dbhost_md_end""#).expect("label");
        assert!(r
            .match_indices(r#"GOTO="dbhost_md_end""#)
            .all(|(i, _)| i < label));
        // No rule line runs a program (mdadm in particular).
        assert!(!r
            .lines()
            .any(|l| !l.starts_with('#') && (l.contains("PROGRAM") || l.contains("RUN"))));
    }

    #[test]
    fn install_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        let fx = FakeExec::new();
        let o = BootUnitOptions::default();
        let r = install_boot_unit(&h, &fx, &o).unwrap();
        assert!(r.changed());
        assert_eq!(
            r.value(),
            &PathBuf::from("/etc/systemd/system/dbhost-assemble.service")
        );
        assert_eq!(
            std::fs::read_to_string(h.etc(UDEV_RULE_ETC)).unwrap(),
            UDEV_RULE
        );
        let root = format!("--root={}", d.path().display());
        assert_eq!(
            fx.calls(),
            vec![
                format!("systemctl {root} is-enabled {UNIT_NAME}"),
                format!("systemctl {root} enable {UNIT_NAME}")
            ]
        );
        let fx = FakeExec::new();
        fx.answer(
            "systemctl",
            ExecOutput {
                status: 0,
                stdout: "enabled\n".into(),
                stderr: String::new(),
            },
        );
        let r = install_boot_unit(&h, &fx, &o).unwrap();
        assert!(!r.changed());
        assert_eq!(fx.calls().len(), 1);
    }
}
