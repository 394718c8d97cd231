//! The one reader of the kernel's mount and swap tables (pure parsers over their text) and
//! lookups: `/proc/self/mounts`, `/proc/self/mountinfo` (proc(5)) and `/proc/swaps`.

/// One mount: source, mount point, fs type, options (octal escapes decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub options: String,
}

/// Decode the `\040`-style octal escapes the kernel uses in mount tables (space, tab, newline,
/// backslash). A backslash not followed by three octal digits of one byte (`\0`..`\377`) stays
/// as it is.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = |c: &u8| (b'0'..=b'7').contains(c);
        if b[i] == b'\\'
            && i + 3 < b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && b[i + 2..i + 4].iter().all(octal)
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `/proc/self/mounts` (or `/proc/mounts`): one [`Mount`] per line with at least three fields.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Mount {
                source: unescape(f.next()?),
                target: unescape(f.next()?),
                fstype: f.next()?.to_string(),
                options: f.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// The last (topmost) mount on `target`.
pub fn find<'a>(mounts: &'a [Mount], target: &str) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.target == target)
}

/// One line of `/proc/self/mountinfo`, which also names the device by number (`major:minor`),
/// so a source the kernel shows as `/dev/root` still leads to its disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub devnum: String,
    pub source: String,
    pub target: String,
    pub fstype: String,
}

/// `ID PARENT MAJ:MIN ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTIONS`;
/// lines without the ` - ` separator or with fewer than five fields before it are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split_whitespace().collect();
            if l.len() < 5 {
                return None;
            }
            let mut r = right.split_whitespace();
            let fstype = r.next().unwrap_or("").to_string();
            Some(MountInfo {
                devnum: l[2].to_string(),
                source: unescape(r.next().unwrap_or("")),
                target: unescape(l[4]),
                fstype,
            })
        })
        .collect()
}

/// One active swap area of `/proc/swaps`: its source and its type (`partition` or `file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    pub source: String,
    pub kind: String,
}

/// `/proc/swaps`: a header line, then `Filename Type Size Used Priority` per swap area.
pub fn parse_swaps(text: &str) -> Vec<Swap> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Swap {
                source: unescape(f.next()?),
                kind: f.next()?.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_unescapes() {
        let t = "/dev/vda1 / ext4 rw,relatime 0 0\n/dev/md127 /data\\040drive xfs rw,noatime 0 0\n";
        let m = parse(t);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].target, "/data drive");
        assert_eq!(find(&m, "/data drive").unwrap().source, "/dev/md127");
        assert!(find(&m, "/datadrive").is_none());
    }

    #[test]
    fn unescape_decodes_only_one_byte_octal_escapes() {
        assert_eq!(unescape("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape("a\\011b\\012c\\134d"), "a\tb\nc\\d");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("tail\\04"), "tail\\04");
        assert_eq!(unescape("\\\\040"), "\\ ");
    }

    /// Found by fuzzing (host_text): `\777` overflowed the byte it decodes to (a panic in a
    /// debug build, a wrong character in release). Three octal digits above `\377` are no
    /// escape the kernel writes; they stay as they are.
    #[test]
    fn unescape_leaves_escapes_above_one_byte() {
        assert_eq!(unescape("/mnt/\\777"), "/mnt/\\777");
        assert_eq!(unescape("\\400x"), "\\400x");
        assert_eq!(unescape("\\377"), "\u{fffd}");
    }

    #[test]
    fn mountinfo_names_the_device_number() {
        let t = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n\
                 35 22 9:127 / /data\\040drive rw,noatime shared:9 master:2 - xfs /dev/md127 rw\n\
                 garbage without separator\n\
                 1 2 - short\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            m[0],
            MountInfo {
                devnum: "8:1".into(),
                source: "/dev/root".into(),
                target: "/".into(),
                fstype: "ext4".into()
            }
        );
        assert_eq!(m[1].target, "/data drive");
        assert_eq!(m[1].source, "/dev/md127");
    }

    #[test]
    fn swaps_skip_the_header() {
        let t = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                 /dev/sdb2                               partition\t1048572\t\t0\t\t-2\n\
                 /swap\\040file file 1024 0 -3\n\
                 lonely\n";
        assert_eq!(
            parse_swaps(t),
            vec![
                Swap {
                    source: "/dev/sdb2".into(),
                    kind: "partition".into()
                },
                Swap {
                    source: "/swap file".into(),
                    kind: "file".into()
                }
            ]
        );
    }
}
