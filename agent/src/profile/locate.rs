//! Where things are in a profile's text: byte offset → `line:col`, a toml error's offset → the
//! dotted key it falls in, and a dotted key path → its span (so cross-field validation errors
//! carry `line:col` too, without wrapping every field in `toml::Spanned`).
//!
//! Key paths are written `a.b.c`; a segment may be quoted (`tuning.overrides."vm.swappiness"`)
//! and may end in an array index (`disks.luns[2]`).

use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// 1-based line and column (in characters) of byte offset `off` in `text`.
pub fn line_col(text: &str, off: usize) -> (usize, usize) {
    let off = off.min(text.len());
    let before = text.get(..off).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn contains(span: &Range<usize>, off: usize) -> bool {
    span.start <= off && (off < span.end || (span.start == span.end && off == span.start))
}

/// Render a key segment, quoting it when it is not a bare TOML key.
pub fn seg(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// The dotted path of the innermost key or value whose span contains byte `off`.
pub fn key_at(table: &DeTable<'_>, off: usize) -> Option<String> {
    for (k, v) in table.iter() {
        if let Some(inner) = value_key_at(v, off) {
            return Some(join(&seg(k.get_ref()), &inner));
        }
        if contains(&k.span(), off) || contains(&v.span(), off) {
            return Some(seg(k.get_ref()));
        }
    }
    None
}

fn value_key_at(v: &Spanned<DeValue<'_>>, off: usize) -> Option<String> {
    match v.get_ref() {
        DeValue::Table(t) => key_at(t, off),
        DeValue::Array(a) => a.iter().enumerate().find_map(|(i, e)| {
            if let Some(inner) = value_key_at(e, off) {
                Some(format!("[{i}]{}", dot(&inner)))
            } else if contains(&e.span(), off) {
                Some(format!("[{i}]"))
            } else {
                None
            }
        }),
        _ => None,
    }
}

fn dot(s: &str) -> String {
    if s.is_empty() || s.starts_with('[') {
        s.to_string()
    } else {
        format!(".{s}")
    }
}

fn join(a: &str, b: &str) -> String {
    format!("{a}{}", dot(b))
}

#[derive(Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut chars = path.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '.' => {
                chars.next();
            }
            '"' => {
                chars.next();
                let mut k = String::new();
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    k.push(c);
                }
                out.push(Seg::Key(k));
            }
            '[' => {
                chars.next();
                let mut n = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    n.push(c);
                }
                if let Ok(i) = n.parse() {
                    out.push(Seg::Index(i));
                }
            }
            _ => {
                let mut k = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    k.push(c);
                    chars.next();
                }
                out.push(Seg::Key(k));
            }
        }
    }
    out
}

/// The span of `path` in the document: a leaf key's value, an array element, or — for a key
/// that is absent (a default caused the problem) — the nearest enclosing key that is present.
pub fn span_of(root: &DeTable<'_>, path: &str) -> Option<Range<usize>> {
    let segs = parse_path(path);
    let mut best: Option<Range<usize>> = None;
    let mut cur: Option<&Spanned<DeValue<'_>>> = None;
    for s in &segs {
        let next = match (s, cur) {
            (Seg::Key(k), None) => root
                .iter()
                .find(|(key, _)| key.get_ref() == k)
                .map(|(key, v)| (key.span(), v)),
            (Seg::Key(k), Some(v)) => match v.get_ref() {
                DeValue::Table(t) => t
                    .iter()
                    .find(|(key, _)| key.get_ref() == k)
                    .map(|(key, v)| (key.span(), v)),
                _ => None,
            },
            (Seg::Index(i), Some(v)) => match v.get_ref() {
                DeValue::Array(a) => a.get(*i).map(|e| (e.span(), e)),
                _ => None,
            },
            (Seg::Index(_), None) => None,
        };
        match next {
            Some((key_span, v)) => {
                // Point at scalars' values; at tables and arrays' keys.
                best = Some(match v.get_ref() {
                    DeValue::Table(_) | DeValue::Array(_) => key_span,
                    _ => v.span(),
                });
                cur = Some(v);
            }
            None => break,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "version = 1\n[disks]\nluns = [0, \"4-7\"]\n\n[tuning.overrides]\n\"vm.swappiness\" = 1\n";

    #[test]
    fn offsets_to_line_col() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("é\nx", 3), (2, 1));
        assert_eq!(line_col("éx", 2), (1, 2));
    }

    #[test]
    fn paths_to_spans_and_back() {
        let doc = DeTable::parse(DOC).unwrap();
        let t = doc.get_ref();
        let s = span_of(t, "disks.luns[1]").unwrap();
        assert_eq!(&DOC[s.clone()], "\"4-7\"");
        assert_eq!(line_col(DOC, s.start), (3, 12));
        assert_eq!(key_at(t, s.start).as_deref(), Some("disks.luns[1]"));
        let s = span_of(t, "tuning.overrides.\"vm.swappiness\"").unwrap();
        assert_eq!(&DOC[s.clone()], "1");
        assert_eq!(
            key_at(t, s.start).as_deref(),
            Some("tuning.overrides.\"vm.swappiness\"")
        );
        // Absent key: the nearest present ancestor.
        let s = span_of(t, "disks.min-size").unwrap();
        assert_eq!(line_col(DOC, s.start), (2, 2));
        assert_eq!(span_of(t, "array.level"), None);
        let s = span_of(t, "version").unwrap();
        assert_eq!(&DOC[s], "1");
    }
}
