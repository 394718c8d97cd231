//! PostgreSQL's control file (`global/pg_control`) read as bytes, and WAL positions (LSNs).
//! Pure parsing over buffers; the only I/O is reading the file (or asking `pg_controldata`, the
//! engine's own reader, on a live host).

use crate::host::{CommandSpec, Exec, Host};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// A WAL position (`pg_lsn`), printed as PostgreSQL does: `16/B374D848`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl std::str::FromStr for Lsn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (hi, lo) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not an LSN (X/Y)"))?;
        let hi = u32::from_str_radix(hi, 16).map_err(|e| format!("{s:?}: {e}"))?;
        let lo = u32::from_str_radix(lo, 16).map_err(|e| format!("{s:?}: {e}"))?;
        Ok(Lsn(((hi as u64) << 32) | lo as u64))
    }
}

impl From<Lsn> for String {
    fn from(l: Lsn) -> String {
        l.to_string()
    }
}

impl TryFrom<String> for Lsn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// The parts of `pg_control` dbhost uses (PostgreSQL 11 and later; little-endian hosts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Control {
    pub system_identifier: u64,
    pub state: &'static str,
    /// Start of the latest checkpoint record (a clean shutdown writes one last).
    pub checkpoint: Lsn,
    pub redo: Lsn,
    pub timeline: u32,
}

/// `DBState` names as `pg_controldata` prints them.
fn state_name(v: i32) -> Option<&'static str> {
    Some(match v {
        0 => "starting up",
        1 => "shut down",
        2 => "shut down in recovery",
        3 => "shutting down",
        4 => "in crash recovery",
        5 => "in archive recovery",
        6 => "in production",
        _ => return None,
    })
}

/// Parse a control file: system identifier (offset 0), state (16), checkPoint (32), and the
/// checkpoint copy's redo (40) and timeline (48).
pub fn parse_control(buf: &[u8]) -> Option<Control> {
    let u64_at =
        |o: usize| -> Option<u64> { Some(u64::from_le_bytes(buf.get(o..o + 8)?.try_into().ok()?)) };
    let u32_at =
        |o: usize| -> Option<u32> { Some(u32::from_le_bytes(buf.get(o..o + 4)?.try_into().ok()?)) };
    Some(Control {
        system_identifier: u64_at(0)?,
        state: state_name(u32_at(16)? as i32)?,
        checkpoint: Lsn(u64_at(32)?),
        redo: Lsn(u64_at(40)?),
        timeline: u32_at(48)?,
    })
}

/// `DBState` from a control file (offset 16, after system identifier u64, pg_control_version u32
/// and catalog_version_no u32).
pub fn pg_control_state(buf: &[u8]) -> Option<&'static str> {
    let b: [u8; 4] = buf.get(16..20)?.try_into().ok()?;
    state_name(i32::from_le_bytes(b))
}

/// The control data of the cluster at `datadir` (in-host path).
pub fn read_control(host: &Host, datadir: &Path) -> Option<Control> {
    parse_control(&fs::read(host.path(datadir).join("global/pg_control")).ok()?)
}

/// The state of a cluster: from `pg_controldata` when live and found, else the control file.
pub fn pg_cluster_state(host: &Host, exec: &dyn Exec, datadir: &Path) -> Option<String> {
    if host.is_live() {
        if let Some(bin) = pg_bin(host, "pg_controldata") {
            if let Ok(out) = exec.run(
                &CommandSpec::new(&bin.display().to_string()).arg(datadir.display().to_string()),
            ) {
                for l in out.stdout.lines() {
                    if let Some(v) = l.strip_prefix("Database cluster state:") {
                        return Some(v.trim().to_string());
                    }
                }
            }
        }
    }
    let buf = fs::read(host.path(datadir).join("global/pg_control")).ok()?;
    pg_control_state(&buf).map(str::to_string)
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A PostgreSQL server program (`pg_controldata`, `pg_basebackup`, `postgres`, ...): the newest
/// version's under Debian's `/usr/lib/postgresql/<ver>/bin`, else the RHEL/`/usr` layouts.
/// Host-mapped path.
pub fn pg_bin(host: &Host, name: &str) -> Option<PathBuf> {
    let mut c = Vec::new();
    for base in ["/usr/lib/postgresql", "/usr"] {
        for e in sorted_entries(&host.path(base)) {
            let p = e.join("bin").join(name);
            if p.is_file() {
                c.push(p);
            }
        }
    }
    for p in [format!("/usr/bin/{name}"), format!("/usr/local/bin/{name}")] {
        if host.path(&p).is_file() {
            c.push(host.path(&p));
        }
    }
    c.pop()
}

/// A program of PostgreSQL major version `major` (Debian: `/usr/lib/postgresql/<major>/bin`),
/// falling back to [`pg_bin`]. In-host path.
pub fn pg_bin_of(host: &Host, major: &str, name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin/{name}"));
    if host.path(&p).is_file() {
        return Some(p);
    }
    pg_bin(host, name).map(|p| host.unroot(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_roundtrip_and_order() {
        let l: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(l.0, 0x16_B374_D848);
        assert_eq!(l.to_string(), "16/B374D848");
        assert_eq!("0/0".parse::<Lsn>().unwrap(), Lsn(0));
        assert!("0/3000060".parse::<Lsn>().unwrap() > "0/3000028".parse().unwrap());
        assert!("x".parse::<Lsn>().is_err());
        let j = serde_json::to_string(&l).unwrap();
        assert_eq!(j, "\"16/B374D848\"");
        assert_eq!(serde_json::from_str::<Lsn>(&j).unwrap(), l);
    }

    #[test]
    fn control_file_fields() {
        let mut b = vec![0u8; 512];
        b[0..8].copy_from_slice(&7_300_000_000_000_000_123u64.to_le_bytes());
        b[16] = 1;
        b[32..40].copy_from_slice(&0x0300_0028u64.to_le_bytes());
        b[40..48].copy_from_slice(&0x0300_0028u64.to_le_bytes());
        b[48..52].copy_from_slice(&1u32.to_le_bytes());
        let c = parse_control(&b).unwrap();
        assert_eq!(c.state, "shut down");
        assert_eq!(c.checkpoint.to_string(), "0/3000028");
        assert_eq!(c.timeline, 1);
        assert_eq!(c.system_identifier, 7_300_000_000_000_000_123);
        b[16] = 6;
        assert_eq!(pg_control_state(&b), Some("in production"));
        assert_eq!(pg_control_state(&b[..10]), None);
        assert_eq!(parse_control(&b[..40]), None);
    }
}
