//! Fuzz the postgresql.conf reader and the `data_directory` rewrite. The first two lines of
//! the input are a mount point and a datadir (kept only when the profile accepts them); the
//! rest is the existing postgresql.conf. Beyond "no panic": after the rewrite the reader finds
//! exactly the new datadir, a second rewrite changes nothing, and every other line is kept.
#![no_main]

use dbhost::db::engine::{pg_conf_value, pg_set_data_directory};
use dbhost::profile::validate::{check_mount_point, check_subdir};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    for key in ["data_directory", "port", "include_dir"] {
        if let Some((_, line)) = pg_conf_value(input, key) {
            assert!(line >= 1 && line <= input.lines().count());
        }
    }
    let mut parts = input.splitn(3, '\n');
    let (Some(mp), Some(dd), Some(conf)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    if check_mount_point(mp).is_err() || check_subdir(dd).is_err() {
        return;
    }
    let new = Path::new(mp).join(dd);
    let out = pg_set_data_directory(conf, &new);
    let got = pg_conf_value(&out, "data_directory").map(|(v, _)| v);
    assert_eq!(
        got.as_deref(),
        new.to_str(),
        "after setting {new:?} the reader finds otherwise in:\n{out}"
    );
    assert_eq!(
        pg_set_data_directory(&out, &new),
        out,
        "a second rewrite changed the text"
    );
    let out_lines: Vec<&str> = out.split_inclusive('\n').collect();
    for raw in conf.split_inclusive('\n') {
        let whole = if raw.ends_with('\n') {
            raw.to_string()
        } else {
            format!("{raw}\n")
        };
        if out_lines.contains(&whole.as_str()) {
            continue;
        }
        let t = raw.trim_start().to_ascii_lowercase();
        assert!(
            t.starts_with("data_directory"),
            "line {raw:?} lost by the rewrite:\n{out}"
        );
    }
});
