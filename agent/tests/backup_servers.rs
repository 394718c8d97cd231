//! The storage layer against real servers on loopback: Azurite (Azure Blob) and moto (S3),
//! started by `scripts/backup-servers.py start` (scripts/test-all.sh does it and exports
//! DBHOST_AZURITE_PORT / DBHOST_S3_PORT). Without them these tests skip, unless
//! DBHOST_REQUIRE_ORACLES=1 (test-all.sh), where a missing server fails.
//!
//! Proves per service: a multipart upload of a program's stream (several parts) reads back with
//! its hash; a flipped byte in the stored object is refused naming it; wrong credentials and a
//! missing container fail naming the destination and what the server answered.

use dbhost::backup::codec::Encoding;
use dbhost::backup::dest::{self, Destination, OpenCtx, Store};
use dbhost::backup::object::HashMismatch;
use dbhost::backup::pipe::{self, Decoding, Parts};
use dbhost::host::{CommandSpec, Host, RealExec};
use std::path::Path;
use std::process::Command;

const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn port(var: &str) -> Option<u16> {
    match std::env::var(var).ok().and_then(|p| p.parse().ok()) {
        Some(p) => Some(p),
        None if std::env::var("DBHOST_REQUIRE_ORACLES").as_deref() == Ok("1") => {
            panic!("{var} is not set: start the servers with scripts/backup-servers.py start DIR")
        }
        None => {
            eprintln!("skipping: {var} not set (scripts/backup-servers.py start DIR)");
            None
        }
    }
}

fn servers(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/backup-servers.py");
    let st = Command::new("python3")
        .arg(script)
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "backup-servers.py {args:?}");
}

fn open(d: &Destination, vars: &'static [(&'static str, &'static str)]) -> anyhow::Result<Store> {
    let env = move |k: &str| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    dest::open(
        d,
        &OpenCtx {
            host: &Host::with_root("/nonexistent"),
            env: &env,
            on_azure: false,
            imds_endpoint: "http://127.0.0.1:9".into(),
        },
    )
}

fn azure(port: u16, container: &str) -> Destination {
    let mut d = Destination::parse(&format!("azure://{container}/ci/run")).unwrap();
    d.endpoint = Some(format!("http://127.0.0.1:{port}/devstoreaccount1"));
    d.account = Some("devstoreaccount1".into());
    d
}

fn s3(port: u16, bucket: &str) -> Destination {
    let mut d = Destination::parse(&format!("s3://{bucket}/ci/run")).unwrap();
    d.endpoint = Some(format!("http://127.0.0.1:{port}"));
    d
}

const AZ_OK: &[(&str, &str)] = &[("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY)];
const AZ_BAD: &[(&str, &str)] = &[(
    "AZURE_STORAGE_ACCOUNT_KEY",
    "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXkgd3Jvbmcga2V5IHdyb25nIGtleQ==",
)];
const S3_OK: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
];

/// Upload ~13 MB of a program's output in 5 MiB parts, read it back, then flip a bit.
fn round_trip(store: &Store, flip: impl Fn(&str)) {
    let rt = dbhost::net::runtime().unwrap();
    let cmd = CommandSpec::new("sh").args(["-c", "head -c 13000000 /dev/urandom"]);
    let name = "20261118T000000Z-mariadb-physical-test/data.xbstream.zst";
    let parts = Parts {
        size: 5 << 20,
        concurrency: 2,
    };
    let up = pipe::upload_command(
        &rt,
        &RealExec,
        &cmd,
        store,
        name,
        &Encoding::default(),
        parts,
    )
    .unwrap();
    assert!(up.stored.bytes > 10 << 20, "{}", up.stored.bytes);
    let dec = Decoding {
        compression: dbhost::backup::codec::Compression::Zstd,
        encrypted: false,
        identities: &[],
    };
    let mut back = Vec::new();
    pipe::download_into(
        &rt,
        store,
        &up.stored,
        &dec,
        (up.plain_bytes, &up.plain_sha256),
        &mut back,
    )
    .unwrap();
    assert_eq!(back.len(), 13_000_000);
    flip(&format!("ci/run/{name}"));
    let mut sink = Vec::new();
    let e = pipe::download_into(
        &rt,
        store,
        &up.stored,
        &dec,
        (up.plain_bytes, &up.plain_sha256),
        &mut sink,
    )
    .unwrap_err();
    let m = e
        .downcast_ref::<HashMismatch>()
        .unwrap_or_else(|| panic!("not a hash mismatch: {e:#}"));
    assert_eq!(m.name, name);
    assert_eq!(m.expected, up.stored.sha256);
}

/// A listing through the destination: Ok(keys) or the error text.
fn list(store: &Store) -> Result<Vec<String>, String> {
    let rt = dbhost::net::runtime().unwrap();
    rt.block_on(dbhost::backup::object::list_keys(store, 10))
        .map_err(|e| format!("{e:#}"))
}

#[test]
fn azurite_multipart_hashes_and_errors() {
    let Some(p) = port("DBHOST_AZURITE_PORT") else {
        return;
    };
    servers(&["container", "azure", &p.to_string(), "ci-backups"]);
    let store = open(&azure(p, "ci-backups"), AZ_OK).unwrap();
    round_trip(&store, |key| {
        servers(&["flip", "azure", &p.to_string(), "ci-backups", key]);
    });
    let bad = open(&azure(p, "ci-backups"), AZ_BAD).unwrap();
    let e = list(&bad).unwrap_err();
    assert!(
        e.contains("azure://ci-backups/ci/run") && e.contains("403"),
        "{e}"
    );
    let missing = open(&azure(p, "no-such-container"), AZ_OK).unwrap();
    let e = list(&missing).unwrap_err();
    assert!(
        e.contains("azure://no-such-container") && e.contains("ContainerNotFound"),
        "{e}"
    );
}

#[test]
fn moto_multipart_hashes_and_errors() {
    let Some(p) = port("DBHOST_S3_PORT") else {
        return;
    };
    servers(&["container", "s3", &p.to_string(), "ci-backups"]);
    let store = open(&s3(p, "ci-backups"), S3_OK).unwrap();
    round_trip(&store, |key| {
        servers(&["flip", "s3", &p.to_string(), "ci-backups", key]);
    });
    let missing = open(&s3(p, "no-such-bucket"), S3_OK).unwrap();
    let e = list(&missing).unwrap_err();
    assert!(
        e.contains("s3://no-such-bucket") && e.contains("NoSuchBucket"),
        "{e}"
    );
}
