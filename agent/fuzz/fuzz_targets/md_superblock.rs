//! Fuzz the md superblock parsers: arbitrary bytes must never panic, and whatever parses must
//! re-encode to a buffer that parses to the same superblock (checksum recomputed).
#![no_main]

use dbhost::md::superblock;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = superblock::decode_v090(data);
    let _ = superblock::checksum(data);
    if let Ok(Some(d)) = superblock::decode(data) {
        let _ = d.sb.role_text();
        let _ = d.sb.array_state();
        let enc = d.sb.encode();
        let again = superblock::parse(&enc)
            .expect("re-encoded superblock must parse")
            .expect("re-encoded superblock has magic");
        let mut a = again.clone();
        let mut b = d.sb.clone();
        a.sb_csum = 0;
        b.sb_csum = 0;
        assert_eq!(a, b);
    }
    // A whole "device": every superblock location.
    let _ = superblock::scan(&mut std::io::Cursor::new(data), data.len() as u64);
});
