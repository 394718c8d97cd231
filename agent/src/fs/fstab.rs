//! fstab lines: by filesystem UUID (never /dev/mdN or /dev/sdX), `nofail` so boot never hangs on a
//! missing array, `x-systemd.device-timeout`, and an owner tag (`x-dbhost.owner=<name>`) so dbhost
//! recognises its own entry. Pure: text in, text out; comments and other lines kept byte-for-byte.

use super::FsType;

/// The option that marks an entry as dbhost's.
pub const OWNER_OPT: &str = "x-dbhost.owner";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub fs_uuid: String,
    pub mount_point: String,
    pub fs: FsType,
    /// Extra options from the profile (appended after the defaults).
    pub extra_options: Vec<String>,
    /// e.g. "30s"
    pub device_timeout: String,
    /// Owner tag value (the array/filesystem name).
    pub owner: String,
}

impl Entry {
    pub fn options(&self) -> String {
        let mut o = vec![
            "defaults".to_string(),
            "noatime".to_string(),
            "nofail".to_string(),
            format!("x-systemd.device-timeout={}", self.device_timeout),
        ];
        for e in &self.extra_options {
            if !o.contains(e) {
                o.push(e.clone());
            }
        }
        o.push(format!("{OWNER_OPT}={}", self.owner));
        o.join(",")
    }

    pub fn line(&self) -> String {
        let pass = match self.fs {
            FsType::Xfs => 0,
            FsType::Ext4 => 2,
        };
        format!(
            "UUID={} {} {} {} 0 {}",
            self.fs_uuid,
            self.mount_point,
            self.fs.as_str(),
            self.options(),
            pass
        )
    }
}

/// A parsed non-comment fstab line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub spec: &'a str,
    pub file: &'a str,
    pub vfstype: &'a str,
    pub options: &'a str,
}

pub fn parse_line(l: &str) -> Option<Line<'_>> {
    let t = l.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let mut f = t.split_whitespace();
    Some(Line {
        spec: f.next()?,
        file: f.next()?,
        vfstype: f.next().unwrap_or(""),
        options: f.next().unwrap_or(""),
    })
}

/// The owner tag of a line, if it is dbhost's.
pub fn owner_of(line: &Line<'_>) -> Option<String> {
    line.options
        .split(',')
        .find_map(|o| o.strip_prefix(&format!("{OWNER_OPT}=")).map(str::to_string))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    Added,
    /// Our own entry was updated; the old line is returned for the report.
    Replaced(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("fstab already mounts {spec} at {mount_point} (line {lineno}), not managed by dbhost; remove or change that line, or choose another mount point in the profile")]
    ForeignEntry {
        spec: String,
        mount_point: String,
        lineno: usize,
    },
}

/// Ensure `entry` is in `text`. Our entry is found by owner tag or by mount point; a foreign
/// entry on the same mount point is a conflict (we never silently take over someone's mount).
pub fn ensure(text: &str, entry: &Entry) -> Result<(String, Change), Conflict> {
    let want = entry.line();
    let mut out: Vec<String> = Vec::new();
    let mut change = Change::Added;
    let mut placed = false;
    for (i, raw) in text.lines().enumerate() {
        if let Some(l) = parse_line(raw) {
            let ours = owner_of(&l).as_deref() == Some(entry.owner.as_str());
            let same_mp = l.file == entry.mount_point;
            if ours || same_mp {
                if same_mp && !ours {
                    return Err(Conflict::ForeignEntry {
                        spec: l.spec.to_string(),
                        mount_point: l.file.to_string(),
                        lineno: i + 1,
                    });
                }
                if placed {
                    // a duplicate of our own entry: drop it
                    change = Change::Replaced(raw.to_string());
                    continue;
                }
                placed = true;
                if raw.trim() == want {
                    change = Change::Unchanged;
                    out.push(raw.to_string());
                } else {
                    change = Change::Replaced(raw.to_string());
                    out.push(want.clone());
                }
                continue;
            }
        }
        out.push(raw.to_string());
    }
    if !placed {
        out.push(format!(
            "# added by dbhost: {} array filesystem",
            entry.owner
        ));
        out.push(want);
    }
    let mut s = out.join("\n");
    s.push('\n');
    if change == Change::Unchanged && !text.ends_with('\n') && !text.is_empty() {
        // normalise a missing final newline only when we change something anyway
        return Ok((text.to_string(), Change::Unchanged));
    }
    Ok((s, change))
}

/// Remove dbhost's entry for `owner` (rollback). Returns the new text and whether it changed.
pub fn remove(text: &str, owner: &str) -> (String, bool) {
    let mut changed = false;
    let mut out = Vec::new();
    let marker = format!("# added by dbhost: {owner} array filesystem");
    for raw in text.lines() {
        if raw.trim() == marker {
            changed = true;
            continue;
        }
        if let Some(l) = parse_line(raw) {
            if owner_of(&l).as_deref() == Some(owner) {
                changed = true;
                continue;
            }
        }
        out.push(raw);
    }
    let mut s = out.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    (s, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            fs_uuid: "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9".into(),
            mount_point: "/datadrive".into(),
            fs: FsType::Xfs,
            extra_options: vec![],
            device_timeout: "30s".into(),
            owner: "dbdata".into(),
        }
    }

    const BASE: &str =
        "# /etc/fstab\nUUID=aaaa / ext4 errors=remount-ro 0 1\n/swapfile none swap sw 0 0\n";

    #[test]
    fn line_is_by_uuid_with_nofail_and_tag() {
        assert_eq!(
            entry().line(),
            "UUID=0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9 /datadrive xfs defaults,noatime,nofail,x-systemd.device-timeout=30s,x-dbhost.owner=dbdata 0 0"
        );
    }

    #[test]
    fn add_then_unchanged() {
        let (t1, c1) = ensure(BASE, &entry()).unwrap();
        assert_eq!(c1, Change::Added);
        assert!(t1.starts_with(BASE));
        assert!(t1.ends_with(&format!("{}\n", entry().line())));
        let (t2, c2) = ensure(&t1, &entry()).unwrap();
        assert_eq!(c2, Change::Unchanged);
        assert_eq!(t1, t2);
    }

    #[test]
    fn replaces_own_entry_with_new_uuid() {
        let (t1, _) = ensure(BASE, &entry()).unwrap();
        let mut e = entry();
        e.fs_uuid = "11111111-2222-3333-4444-555555555555".into();
        let (t2, c2) = ensure(&t1, &e).unwrap();
        assert!(matches!(c2, Change::Replaced(_)));
        assert!(t2.contains("UUID=11111111-2222-3333-4444-555555555555"));
        assert!(!t2.contains("0b1c2d3e"));
        assert_eq!(t2.lines().filter(|l| l.contains(OWNER_OPT)).count(), 1);
    }

    #[test]
    fn foreign_entry_on_mount_point_is_a_conflict() {
        let text = format!("{BASE}/dev/sdc1 /datadrive ext4 defaults 0 2\n");
        let err = ensure(&text, &entry()).unwrap_err();
        assert!(err.to_string().contains("/dev/sdc1"));
        assert!(err.to_string().contains("line 4"));
    }

    #[test]
    fn remove_restores_original() {
        let (t1, _) = ensure(BASE, &entry()).unwrap();
        let (t2, changed) = remove(&t1, "dbdata");
        assert!(changed);
        assert_eq!(t2, BASE);
        let (_, again) = remove(&t2, "dbdata");
        assert!(!again);
    }
}
