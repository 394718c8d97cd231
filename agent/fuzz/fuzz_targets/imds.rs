//! Fuzz the Azure IMDS `storageProfile` parser (JSON from the network). Beyond "no panic":
//! what parses, written back as IMDS writes it (every value a string), parses to the same.
#![no_main]

use dbhost::detect::imds::{parse_storage_profile, ImdsDisk};
use dbhost::detect::model::CacheMode;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fn disk(d: &ImdsDisk) -> Value {
    let caching = match d.caching {
        CacheMode::None => "None",
        CacheMode::ReadOnly => "ReadOnly",
        CacheMode::ReadWrite => "ReadWrite",
        CacheMode::Unknown => "Unknown",
    };
    let mut v = json!({ "caching": caching, "name": d.name });
    if let Some(l) = d.lun {
        v["lun"] = json!(l.to_string());
    }
    if let Some(s) = d.size_gb {
        v["diskSizeGB"] = json!(s.to_string());
    }
    v
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = parse_storage_profile(text) else {
        return;
    };
    let mut v = json!({ "dataDisks": p.data_disks.iter().map(disk).collect::<Vec<_>>() });
    if let Some(os) = &p.os_disk {
        v["osDisk"] = disk(os);
    }
    let again = parse_storage_profile(&v.to_string()).expect("written back, it parses");
    assert_eq!(again, p);
});
