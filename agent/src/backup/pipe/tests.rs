use super::*;
use crate::backup::codec::Compression;
use crate::backup::dest::Service;
use crate::backup::object::HashMismatch;
use crate::host::{ExecOutput, FakeExec, RealExec};
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;

fn mem() -> Store {
    Store {
        store: std::sync::Arc::new(object_store::memory::InMemory::new()),
        prefix: ObjPath::from("p"),
        service: Service::S3,
        name: "mem://test".into(),
    }
}

const PARTS: Parts = Parts {
    size: 5 << 20,
    concurrency: 2,
};

fn dump_text() -> String {
    (0..50_000)
        .map(|i| format!("INSERT INTO t VALUES ({i});\n"))
        .collect()
}

fn back(
    rt: &tokio::runtime::Runtime,
    s: &Store,
    up: &Uploaded,
    enc: &Encoding,
    ids: &[age::x25519::Identity],
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    download_into(
        rt,
        s,
        &up.stored,
        &Decoding {
            compression: enc.compression,
            encrypted: !enc.recipients.is_empty(),
            identities: ids,
        },
        (up.plain_bytes, &up.plain_sha256),
        &mut out,
    )?;
    Ok(out)
}

#[test]
fn a_tool_stream_round_trips_compressed_and_encrypted() {
    let rt = crate::net::runtime().unwrap();
    let s = mem();
    let f = FakeExec::new();
    f.answer(
        "mariadb-dump",
        ExecOutput {
            status: 0,
            stdout: dump_text(),
            stderr: "-- done".into(),
        },
    );
    let id = age::x25519::Identity::generate();
    for enc in [
        Encoding::default(),
        Encoding {
            compression: Compression::Gzip,
            recipients: vec![id.to_public().to_string()],
            ..Encoding::default()
        },
    ] {
        let up = upload_command(
            &rt,
            &f,
            &CommandSpec::new("mariadb-dump"),
            &s,
            "b1/data.sql.zst",
            &enc,
            PARTS,
        )
        .unwrap();
        assert_eq!(up.plain_bytes, dump_text().len() as u64);
        assert!(up.stored.bytes < up.plain_bytes / 5, "{up:?}");
        assert_eq!(up.stderr, "-- done");
        let data = back(&rt, &s, &up, &enc, std::slice::from_ref(&id)).unwrap();
        assert_eq!(data, dump_text().into_bytes());
    }
}

#[test]
fn a_tool_that_fails_after_streaming_leaves_no_object() {
    // The false-success class (xbcloud PXB-2202): output went out, then the tool failed.
    let rt = crate::net::runtime().unwrap();
    let s = mem();
    let f = FakeExec::new();
    f.answer(
        "mariadb-dump",
        ExecOutput {
            status: 2,
            stdout: dump_text(),
            stderr: "mariadb-dump: Error 2013: Lost connection to server during query".into(),
        },
    );
    let e = upload_command(
        &rt,
        &f,
        &CommandSpec::new("mariadb-dump"),
        &s,
        "b1/data.sql.zst",
        &Encoding::default(),
        PARTS,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("exited with status 2") && e.contains("Lost connection"),
        "{e}"
    );
    let r = rt.block_on(s.store.head(&s.key("b1/data.sql.zst")));
    assert!(
        matches!(r, Err(object_store::Error::NotFound { .. })),
        "{r:?}"
    );
}

#[test]
fn a_real_program_killed_midway_fails_the_stream() {
    let rt = crate::net::runtime().unwrap();
    let s = mem();
    let cmd = CommandSpec::new("sh").args(["-c", "head -c 3000000 /dev/zero; kill -9 $$"]);
    let e = upload_command(&rt, &RealExec, &cmd, &s, "b/x", &Encoding::default(), PARTS)
        .unwrap_err()
        .to_string();
    assert!(e.contains("status 137"), "{e}");
    let ok = CommandSpec::new("sh").args(["-c", "head -c 12000000 /dev/urandom"]);
    let up = upload_command(&rt, &RealExec, &ok, &s, "b/y", &Encoding::default(), PARTS).unwrap();
    assert_eq!(up.plain_bytes, 12_000_000);
    // Incompressible: zstd adds a little; the object holds several parts.
    assert!(up.stored.bytes > 12_000_000, "{}", up.stored.bytes);
}

#[test]
fn a_flipped_byte_fails_the_download_naming_the_object() {
    let rt = crate::net::runtime().unwrap();
    let s = mem();
    let f = FakeExec::new();
    f.answer(
        "pg_dump",
        ExecOutput {
            status: 0,
            stdout: dump_text(),
            stderr: String::new(),
        },
    );
    let enc = Encoding::default();
    let up = upload_command(
        &rt,
        &f,
        &CommandSpec::new("pg_dump"),
        &s,
        "b2/db.zst",
        &enc,
        PARTS,
    )
    .unwrap();
    let key = s.key("b2/db.zst");
    let mut bytes = rt
        .block_on(async { s.store.get(&key).await.unwrap().bytes().await.unwrap() })
        .to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    rt.block_on(s.store.put(&key, bytes::Bytes::from(bytes).into()))
        .unwrap();
    let e = back(&rt, &s, &up, &enc, &[]).unwrap_err();
    let m = e
        .downcast_ref::<HashMismatch>()
        .unwrap_or_else(|| panic!("{e:#}"));
    assert_eq!(m.name, "b2/db.zst");
    assert_eq!(m.expected, up.stored.sha256);
}
