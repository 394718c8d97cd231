//! Fuzz the signature probe over arbitrary device heads: the first 8 bytes choose the device
//! size (usually a little more than the head, so the tail signatures are reachable; sometimes
//! any size at all), the rest is the head. Beyond "no panic": every signature lies inside the
//! device, the first non-zero byte reported is one, a blank verdict means every blank-proof
//! region of the head is zeros, and a result survives the JSON a capture stores it in.
#![no_main]

use dbhost::detect::probe::{blank_proof_ranges, probe, ProbeResult};
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (sel, head) = data.split_at(8);
    let x = u64::from_le_bytes(sel.try_into().unwrap());
    let len = head.len() as u64;
    let size = if x & 1 == 0 {
        len + ((x >> 1) & 0xffff)
    } else {
        x >> 1
    };
    let res = match probe(Cursor::new(head), size) {
        Ok(r) => r,
        Err(e) => panic!("probe of an in-memory head failed: {e}"),
    };
    for s in &res.signatures {
        assert!(s.offset < size, "{s:?} outside a {size}-byte device");
    }
    if let Some(o) = res.nonzero_at {
        assert!(o < size.min(len), "nonzero_at {o} outside the head");
        assert_ne!(head[o as usize], 0, "nonzero_at {o} names a zero byte");
    }
    let ranges = blank_proof_ranges(size);
    for w in ranges.windows(2) {
        assert!(w[0].1 < w[1].0, "ranges not sorted and merged: {ranges:?}");
    }
    for &(a, b) in &ranges {
        assert!(a < b && b <= size, "range {a}..{b} outside {size}");
        if res.is_blank() && a < len {
            let end = b.min(len) as usize;
            assert!(
                head[a as usize..end].iter().all(|&c| c == 0),
                "blank verdict with data in {a}..{b}"
            );
        }
    }
    let json = serde_json::to_string(&res).expect("a probe result serializes");
    let back: ProbeResult = serde_json::from_str(&json).expect("a capture's record parses");
    assert_eq!(back, res);

    // The filesystem identification dbhost runs before it writes fstab reads the same heads.
    if let Some((_, uuid)) = dbhost::fs::probe::identify(head) {
        assert_eq!(uuid.len(), 36, "{uuid}");
    }
});
