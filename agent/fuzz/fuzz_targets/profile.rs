//! Fuzz profile parsing (TOML, the v1 schema, cross-field validation). A profile that parses
//! validates clean, serializes, and parses again to the same serialization; a rejected one
//! gets at least one error, each located inside the text.
#![no_main]

use dbhost::profile::{parse, validate::validate};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.toml");
    match parse(text, file) {
        Ok(p) => {
            let problems = validate(&p);
            assert!(problems.is_empty(), "parsed but invalid: {problems:?}");
            let again = toml::to_string(&p).expect("a parsed profile serializes");
            let q = parse(&again, file)
                .unwrap_or_else(|e| panic!("serialized profile does not parse: {e}\n{again}"));
            let third = toml::to_string(&q).expect("serializes");
            assert_eq!(third, again, "serialization is not stable");
        }
        Err(errs) => {
            assert!(!errs.0.is_empty(), "rejected without an error");
            let lines = text.split('\n').count();
            for e in &errs.0 {
                assert!(
                    e.line >= 1 && e.line <= lines,
                    "{e} (text has {lines} lines)"
                );
                assert!(e.col >= 1, "{e}");
            }
            let _ = errs.to_string();
        }
    }
});
