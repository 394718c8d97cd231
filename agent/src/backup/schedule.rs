//! The systemd units a `[backup.schedule]` makes `apply` install (pure rendering):
//! `dbhost-backup.timer` → `dbhost-backup.service` (`dbhost backup`, then `backup prune` when a
//! retention rule is set) and, with `verify`, `dbhost-backup-verify.timer` → its service
//! (`dbhost backup verify latest`). Timers are `Persistent=` (a run missed while the VM was off
//! happens at the next boot) with a randomized delay (hosts sharing a destination spread out).
//! Output goes to the journal; the outcome of each run is also kept for `dbhost status`.

use crate::profile::backup::Backup;
use std::path::Path;

pub const BACKUP_UNIT: &str = "dbhost-backup";
pub const VERIFY_UNIT: &str = "dbhost-backup-verify";

/// One unit file: name under /etc/systemd/system and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    pub name: String,
    pub text: String,
}

fn service(name: &str, what: &str, binary: &str, profile: &Path, runs: &[String]) -> UnitFile {
    let mut text = format!(
        "# Written by dbhost apply from the profile's [backup.schedule]; changes are overwritten.\n\
         [Unit]\n\
         Description={what} (dbhost, profile {p})\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n",
        p = profile.display()
    );
    for (i, args) in runs.iter().enumerate() {
        let key = if i == 0 { "ExecStart" } else { "ExecStartPost" };
        text.push_str(&format!(
            "{key}={binary} {args} --profile {}\n",
            profile.display()
        ));
    }
    // A backup must not slow the database it copies more than it has to.
    text.push_str("Nice=10\nIOSchedulingClass=best-effort\nIOSchedulingPriority=7\n");
    UnitFile {
        name: format!("{name}.service"),
        text,
    }
}

fn timer(name: &str, what: &str, on_calendar: &str, delay_secs: u64) -> UnitFile {
    UnitFile {
        name: format!("{name}.timer"),
        text: format!(
            "# Written by dbhost apply from the profile's [backup.schedule]; changes are overwritten.\n\
             [Unit]\n\
             Description={what} (dbhost)\n\
             \n\
             [Timer]\n\
             OnCalendar={on_calendar}\n\
             Persistent=true\n\
             RandomizedDelaySec={delay_secs}\n\
             \n\
             [Install]\n\
             WantedBy=timers.target\n"
        ),
    }
}

/// Every unit of the schedule (empty when the profile has none). `binary` is the installed
/// dbhost, `profile` the absolute path of the profile the runs read.
pub fn units(b: &Backup, binary: &str, profile: &Path) -> Vec<UnitFile> {
    let Some(s) = &b.schedule else {
        return Vec::new();
    };
    let delay = s.randomized_delay.0.as_secs();
    let r = &b.retention;
    let mut runs = vec!["backup".to_string()];
    if r.keep_last.is_some() || r.keep_daily.is_some() || r.keep_weekly.is_some() {
        runs.push("backup prune".into());
    }
    let mut out = vec![
        service(BACKUP_UNIT, "Back up the database", binary, profile, &runs),
        timer(BACKUP_UNIT, "Scheduled database backup", &s.backup, delay),
    ];
    if let Some(v) = &s.verify {
        out.push(service(
            VERIFY_UNIT,
            "Verify the newest backup by restoring it",
            binary,
            profile,
            &["backup verify latest".to_string()],
        ));
        out.push(timer(
            VERIFY_UNIT,
            "Scheduled backup verification",
            v,
            delay,
        ));
    }
    out
}

/// The timers to enable.
pub fn timers(units: &[UnitFile]) -> Vec<String> {
    units
        .iter()
        .filter(|u| u.name.ends_with(".timer"))
        .map(|u| u.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::backup::{Retention, Schedule};
    use crate::profile::Duration;

    #[test]
    fn a_schedule_renders_timers_and_services() {
        let mut b = Backup {
            destination: "s3://b/p".into(),
            schedule: Some(Schedule {
                backup: "*-*-* 02:30".into(),
                verify: Some("Sun *-*-* 05:00".into()),
                randomized_delay: Duration::secs(3600),
            }),
            retention: Retention {
                keep_last: Some(7),
                ..Retention::default()
            },
            ..Backup::default()
        };
        let u = units(
            &b,
            "/usr/local/sbin/dbhost",
            Path::new("/etc/dbhost/p.toml"),
        );
        let names: Vec<&str> = u.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dbhost-backup.service",
                "dbhost-backup.timer",
                "dbhost-backup-verify.service",
                "dbhost-backup-verify.timer"
            ]
        );
        assert!(u[0].text.contains(
            "ExecStart=/usr/local/sbin/dbhost backup --profile /etc/dbhost/p.toml\nExecStartPost=/usr/local/sbin/dbhost backup prune --profile /etc/dbhost/p.toml\n"
        ), "{}", u[0].text);
        assert!(u[1]
            .text
            .contains("OnCalendar=*-*-* 02:30\nPersistent=true\nRandomizedDelaySec=3600\n"));
        assert!(u[2]
            .text
            .contains("ExecStart=/usr/local/sbin/dbhost backup verify latest --profile"));
        assert_eq!(
            timers(&u),
            ["dbhost-backup.timer", "dbhost-backup-verify.timer"]
        );
        // No retention rule: no prune; no verify: no verify units; no schedule: nothing.
        b.retention = Retention::default();
        b.schedule.as_mut().unwrap().verify = None;
        let u = units(&b, "/x", Path::new("/p"));
        assert_eq!(u.len(), 2);
        assert!(!u[0].text.contains("prune"));
        b.schedule = None;
        assert!(units(&b, "/x", Path::new("/p")).is_empty());
    }
}
