//! Fuzz the MySQL/MariaDB option-file parser. Beyond "no panic": keys come out normalized
//! (lowercase, `_` for `-`), line numbers increase and stay inside the text, and the datadir
//! drop-in dbhost writes reads back as the path it was written for, for every mount point and
//! datadir the profile accepts (the first two lines of the input).
#![no_main]

use dbhost::db::engine::{parse_cnf_text, render_mysql_dropin, CnfLine};
use dbhost::profile::validate::{check_mount_point, check_subdir};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let nlines = text.lines().count();
    let mut last = 0;
    for l in parse_cnf_text(text) {
        if let CnfLine::Setting { key, line, .. } = l {
            assert!(!key.contains('-'), "{key:?}");
            assert!(!key.bytes().any(|b| b.is_ascii_uppercase()), "{key:?}");
            assert!(
                line > last && line <= nlines,
                "line {line} after {last} of {nlines}"
            );
            last = line;
        }
    }

    let mut it = text.lines();
    let (Some(mp), Some(dd)) = (it.next(), it.next()) else {
        return;
    };
    if check_mount_point(mp).is_err() || check_subdir(dd).is_err() {
        return;
    }
    let datadir = Path::new(mp).join(dd);
    let dropin = render_mysql_dropin(&datadir);
    let read: Vec<_> = parse_cnf_text(&dropin)
        .into_iter()
        .filter_map(|l| match l {
            CnfLine::Setting {
                group, key, value, ..
            } => Some((group, key, value)),
            _ => None,
        })
        .collect();
    let want = datadir.to_str().map(str::to_string);
    assert_eq!(
        read,
        vec![("mysqld".to_string(), "datadir".to_string(), want)],
        "the drop-in for {datadir:?} reads back otherwise:\n{dropin}"
    );
});
