//! `/proc/self/mounts` parsing (pure) and lookups.

/// One mount: source, mount point, fs type, options (octal escapes decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub options: String,
}

/// Decode the `\040`-style octal escapes the kernel uses in mount tables.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

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
}
