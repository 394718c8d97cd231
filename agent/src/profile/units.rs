//! Value types of the profile schema that are written as strings: sizes ("512K", "64G"),
//! durations ("300s", "5m"), LUN lists ([0, 1, "4-7"]), expected disk counts (2 or "all") and
//! shell-style globs. Each parses with an error that says what was expected, and serializes back
//! to its canonical text so a profile round-trips.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const KIB: u64 = 1024;

/// A size in bytes, written as `"<n>[K|M|G|T|P]"` (binary units; `KiB` etc. also accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

impl Size {
    pub const fn bytes(self) -> u64 {
        self.0
    }
    pub const fn kib(n: u64) -> Size {
        Size(n * KIB)
    }
    pub const fn mib(n: u64) -> Size {
        Size(n * KIB * KIB)
    }
    pub const fn gib(n: u64) -> Size {
        Size(n * KIB * KIB * KIB)
    }
}

const SIZE_UNITS: [(&str, u64); 5] = [
    ("P", 1 << 50),
    ("T", 1 << 40),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
];

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "invalid size {s:?}: expected a whole number with an optional binary unit, like \"512K\", \"64G\" or \"4096\""
            ));
        }
        let (num, unit) = t.split_at(digits);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid size {s:?}: number too large"))?;
        let mult = match unit.trim() {
            "" | "B" | "b" => 1,
            "K" | "k" | "KiB" | "kiB" => 1 << 10,
            "M" | "m" | "MiB" => 1 << 20,
            "G" | "g" | "GiB" => 1 << 30,
            "T" | "t" | "TiB" => 1 << 40,
            "P" | "p" | "PiB" => 1 << 50,
            u @ ("KB" | "kB" | "MB" | "GB" | "TB" | "PB") => {
                return Err(format!(
                    "invalid size {s:?}: unit {u:?} is ambiguous; sizes are binary, write \"{num}{}\" (or \"{num}{}iB\")",
                    &u[..1].to_uppercase(),
                    &u[..1].to_uppercase()
                ))
            }
            u => {
                return Err(format!(
                    "invalid size {s:?}: unknown unit {u:?} (use K, M, G, T or P, binary)"
                ))
            }
        };
        n.checked_mul(mult)
            .map(Size)
            .ok_or_else(|| format!("invalid size {s:?}: too large"))
    }
}

/// Human-readable size (binary units).
pub fn human_size(b: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 != 0 {
            for (u, m) in SIZE_UNITS {
                if self.0 % m == 0 {
                    return write!(f, "{}{u}", self.0 / m);
                }
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size string like \"512K\" or \"64G\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A duration, written as `"<n><unit>"` with unit `ms`, `s`, `m`, `h` or `d` ("300s", "5m").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn secs(n: u64) -> Duration {
        Duration(std::time::Duration::from_secs(n))
    }
    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }
}

const DURATION_UNITS: [(&str, u128); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl std::str::FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration {s:?}: expected a whole number with a unit, like \"300s\", \"5m\" or \"1h\""
            ));
        }
        let (num, unit) = t.split_at(digits);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: number too large"))?;
        let ms_per: u64 = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" if n == 0 => 1,
            "" => {
                return Err(format!(
                    "invalid duration {s:?}: a unit is required (ms, s, m, h or d), e.g. \"{n}s\""
                ))
            }
            u => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {u:?} (use ms, s, m, h or d)"
                ))
            }
        };
        n.checked_mul(ms_per)
            .map(|ms| Duration(std::time::Duration::from_millis(ms)))
            .ok_or_else(|| format!("invalid duration {s:?}: too large"))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (u, m) in DURATION_UNITS {
            if ms % m == 0 {
                return write!(f, "{}{u}", ms / m);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string like \"300s\" or \"5m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// One entry of a LUN list: a single LUN (`3`) or an inclusive range (`"4-7"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LunSpec {
    One(u32),
    Range(u32, u32),
}

impl LunSpec {
    pub fn contains(&self, lun: u32) -> bool {
        match *self {
            LunSpec::One(l) => l == lun,
            LunSpec::Range(a, b) => (a..=b).contains(&lun),
        }
    }
    /// Every LUN this entry names (ranges are validated to be ordered and bounded).
    pub fn luns(&self) -> std::ops::RangeInclusive<u32> {
        match *self {
            LunSpec::One(l) => l..=l,
            LunSpec::Range(a, b) => a..=b,
        }
    }
}

impl fmt::Display for LunSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LunSpec::One(l) => write!(f, "{l}"),
            LunSpec::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

/// Render a LUN list compactly: `0, 1, 4-7`.
pub fn format_luns(luns: &[LunSpec]) -> String {
    luns.iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Serialize for LunSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LunSpec::One(l) => s.serialize_u32(*l),
            LunSpec::Range(..) => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for LunSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LunSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a LUN number like 3 or a range string like \"4-7\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LunSpec, E> {
                u32::try_from(v)
                    .map(LunSpec::One)
                    .map_err(|_| E::custom(format!("invalid LUN {v}: must be 0 or more")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LunSpec, E> {
                u32::try_from(v)
                    .map(LunSpec::One)
                    .map_err(|_| E::custom(format!("invalid LUN {v}: too large")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LunSpec, E> {
                let bad = || {
                    E::custom(format!(
                        "invalid LUN range {v:?}: expected \"FIRST-LAST\" like \"4-7\""
                    ))
                };
                let (a, b) = v.split_once('-').ok_or_else(bad)?;
                let a: u32 = a.trim().parse().map_err(|_| bad())?;
                let b: u32 = b.trim().parse().map_err(|_| bad())?;
                Ok(LunSpec::Range(a, b))
            }
        }
        d.deserialize_any(V)
    }
}

/// How many disks the profile expects: an exact number, or every selected disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpectedCount {
    #[default]
    All,
    Exactly(u32),
}

impl fmt::Display for ExpectedCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedCount::All => f.write_str("all"),
            ExpectedCount::Exactly(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for ExpectedCount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ExpectedCount::All => s.serialize_str("all"),
            ExpectedCount::Exactly(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for ExpectedCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ExpectedCount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a disk count like 2, or \"all\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExpectedCount, E> {
                u32::try_from(v)
                    .map(ExpectedCount::Exactly)
                    .map_err(|_| E::custom(format!("invalid disk count {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExpectedCount, E> {
                u32::try_from(v)
                    .map(ExpectedCount::Exactly)
                    .map_err(|_| E::custom(format!("invalid disk count {v}")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ExpectedCount, E> {
                if v == "all" {
                    Ok(ExpectedCount::All)
                } else {
                    Err(E::custom(format!(
                        "invalid disk count {v:?}: expected a number like 2, or \"all\""
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Match `text` against a shell-style glob: `*` any run, `?` one character, everything else
/// literal (case-sensitive).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!("512K".parse::<Size>().unwrap(), Size(512 * 1024));
        assert_eq!("64G".parse::<Size>().unwrap(), Size(64 << 30));
        assert_eq!("1TiB".parse::<Size>().unwrap(), Size(1 << 40));
        assert_eq!("4096".parse::<Size>().unwrap(), Size(4096));
        assert_eq!(Size(512 * 1024).to_string(), "512K");
        assert_eq!(Size(64 << 30).to_string(), "64G");
        assert_eq!(Size(1536).to_string(), "1536");
        assert_eq!(Size(0).to_string(), "0");
        let e = "64GB".parse::<Size>().unwrap_err();
        assert!(e.contains("ambiguous") && e.contains("\"64G\""), "{e}");
        let e = "lots".parse::<Size>().unwrap_err();
        assert!(e.contains("\"512K\""), "{e}");
        assert!("64X".parse::<Size>().unwrap_err().contains("unknown unit"));
        assert!("99999999999P"
            .parse::<Size>()
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!("300s".parse::<Duration>().unwrap(), Duration::secs(300));
        assert_eq!("5m".parse::<Duration>().unwrap(), Duration::secs(300));
        assert_eq!("2d".parse::<Duration>().unwrap(), Duration::secs(2 * 86400));
        assert_eq!("0".parse::<Duration>().unwrap(), Duration::secs(0));
        assert_eq!(Duration::secs(300).to_string(), "5m");
        assert_eq!(Duration::secs(90).to_string(), "90s");
        assert_eq!("1500ms".parse::<Duration>().unwrap().to_string(), "1500ms");
        assert!("300".parse::<Duration>().unwrap_err().contains("\"300s\""));
        assert!("3 weeks"
            .parse::<Duration>()
            .unwrap_err()
            .contains("unknown unit"));
    }

    #[test]
    fn globs() {
        assert!(glob_match("data*", "data1"));
        assert!(glob_match("*data?", "nvme-data1"));
        assert!(!glob_match("data*", "cidata"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("Virtual Disk", "Virtual Disk"));
    }

    #[test]
    fn lun_specs() {
        assert!(LunSpec::Range(4, 7).contains(5));
        assert!(!LunSpec::Range(4, 7).contains(8));
        assert_eq!(
            format_luns(&[LunSpec::One(0), LunSpec::Range(4, 7)]),
            "0, 4-7"
        );
    }
}
