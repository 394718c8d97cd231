use super::*;
use crate::backup::fakehttp;
use object_store::ObjectStoreExt;
use std::os::unix::fs::PermissionsExt;

fn no_env(_: &str) -> Option<String> {
    None
}

fn ctx<'a>(host: &'a Host, env: &'a dyn Fn(&str) -> Option<String>) -> OpenCtx<'a> {
    OpenCtx {
        host,
        env,
        on_azure: false,
        imds_endpoint: "http://127.0.0.1:9".into(),
    }
}

#[test]
fn urls_parse() {
    let d = Destination::parse("azure://backups/roomsy/db1/").unwrap();
    assert_eq!(d.service, Service::Azure);
    assert_eq!(d.container, "backups");
    assert_eq!(d.prefix, "roomsy/db1");
    assert_eq!(d.to_string(), "azure://backups/roomsy/db1");
    let d = Destination::parse("s3://bucket").unwrap();
    assert_eq!(
        (d.service, d.container.as_str(), d.prefix.as_str()),
        (Service::S3, "bucket", "")
    );
    assert_eq!(
        Destination::parse("gs://b/p").unwrap().service,
        Service::Gcs
    );
    let d = Destination::parse("file:///var/backups/db/").unwrap();
    assert_eq!(
        (d.service, d.container.as_str()),
        (Service::Dir, "/var/backups/db")
    );
    assert_eq!(d.to_string(), "file:///var/backups/db");
    let mut d = Destination::parse("s3://b/p").unwrap();
    d.endpoint = Some("http://127.0.0.1:5000".into());
    assert_eq!(d.to_string(), "s3://b/p at http://127.0.0.1:5000");
}

#[test]
fn bad_urls_say_what_to_write() {
    for (u, want) in [
        ("backups", "not a URL"),
        ("ftp://x", "unknown scheme"),
        ("s3:///p", "no bucket"),
        ("azure://", "no container"),
        ("file://relative/dir", "absolute"),
        ("s3://b/a/../c", "plain path segments"),
    ] {
        let e = Destination::parse(u).unwrap_err().to_string();
        assert!(e.contains(want), "{u}: {e}");
    }
}

#[test]
fn env_file_lines() {
    let v = parse_env_file(
        "# secrets\n\nAWS_ACCESS_KEY_ID=AKIA\nexport AWS_SECRET_ACCESS_KEY = \"s3cr=t\"\nX='q'\n",
    )
    .unwrap();
    assert_eq!(
        v,
        vec![
            ("AWS_ACCESS_KEY_ID".to_string(), "AKIA".to_string()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), "s3cr=t".to_string()),
            ("X".to_string(), "q".to_string()),
        ]
    );
    assert_eq!(parse_env_file("A=1\nnot a pair\n").unwrap_err().0, 2);
    assert_eq!(parse_env_file("BAD-NAME=1\n").unwrap_err().0, 1);
}

fn secrets(dir: &std::path::Path, text: &str, mode: u32) -> PathBuf {
    let f = dir.join("backup.env");
    std::fs::write(&f, text).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    f
}

#[test]
fn credentials_file_overrides_environment_and_must_be_private() {
    let d = tempfile::tempdir().unwrap();
    let f = secrets(d.path(), "AWS_SECRET_ACCESS_KEY=fromfile\n", 0o600);
    let env = |k: &str| match k {
        "AWS_ACCESS_KEY_ID" => Some("envid".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_string()),
        _ => None,
    };
    let c = Credentials::load(S3_VARS, &env, Some(&f)).unwrap();
    assert_eq!(c.get("AWS_ACCESS_KEY_ID"), Some("envid"));
    assert_eq!(c.get("AWS_SECRET_ACCESS_KEY"), Some("fromfile"));
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Credentials::load(S3_VARS, &env, Some(&f))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("readable by others") && e.contains("chmod 600"),
        "{e}"
    );
}

#[test]
fn missing_credentials_are_refused_naming_the_variables() {
    let host = Host::with_root("/nonexistent");
    let cx = ctx(&host, &no_env);
    let cases = [
        ("azure://c/p", "AZURE_STORAGE_ACCOUNT_NAME"),
        ("s3://b/p", "AWS_ACCESS_KEY_ID"),
        ("gs://b/p", "GOOGLE_APPLICATION_CREDENTIALS"),
    ];
    for (u, want) in cases {
        let e = open(&Destination::parse(u).unwrap(), &cx).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains(want) && msg.contains(u), "{u}: {msg}");
    }
    let mut d = Destination::parse("azure://c/p").unwrap();
    d.account = Some("acct".into());
    let msg = open(&d, &cx).unwrap_err().to_string();
    assert!(msg.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{msg}");
}

#[test]
fn managed_identity_only_on_azure() {
    let host = Host::with_root("/nonexistent");
    let cx = ctx(&host, &no_env);
    let mut d = Destination::parse("azure://c/p").unwrap();
    d.account = Some("acct".into());
    d.managed_identity = true;
    let msg = open(&d, &cx).unwrap_err().to_string();
    assert!(msg.contains("DMI does not say Azure"), "{msg}");
}

#[test]
fn every_service_opens_with_credentials() {
    let host = Host::with_root("/nonexistent");
    let gcs_key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/backup/gcs-test-service-account.json"
    ))
    .unwrap();
    let env = move |k: &str| -> Option<String> {
        match k {
            "AZURE_STORAGE_ACCOUNT_NAME" => Some("acct".into()),
            "AZURE_STORAGE_ACCOUNT_KEY" => Some("a2V5".into()),
            "AWS_ACCESS_KEY_ID" => Some("id".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            "GOOGLE_SERVICE_ACCOUNT_KEY" => Some(gcs_key.clone()),
            _ => None,
        }
    };
    let cx = ctx(&host, &env);
    for u in ["azure://c/p", "s3://b/p/q", "gs://b"] {
        let s = open(&Destination::parse(u).unwrap(), &cx).unwrap();
        assert_eq!(s.name, u);
        assert!(s.key("x/y").to_string().ends_with("x/y"));
    }
    let s = open(&Destination::parse("s3://b/p/q").unwrap(), &cx).unwrap();
    assert_eq!(s.key("id/manifest.json").as_ref(), "p/q/id/manifest.json");
    assert_eq!(
        s.rel(&s.key("id/manifest.json")).as_deref(),
        Some("id/manifest.json")
    );
    assert_eq!(s.rel(&ObjPath::from("other/x")), None);
}

#[test]
fn directory_destination_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let host = Host::with_root(d.path());
    let cx = ctx(&host, &no_env);
    let s = open(&Destination::parse("file:///srv/backups").unwrap(), &cx).unwrap();
    assert!(d.path().join("srv/backups").is_dir());
    crate::net::block_on(async {
        s.store
            .put(
                &s.key("a/b.txt"),
                bytes::Bytes::from_static(b"hello").into(),
            )
            .await
            .unwrap();
        let got = s
            .store
            .get(&s.key("a/b.txt"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&got[..], b"hello");
    })
    .unwrap();
    assert_eq!(
        std::fs::read(d.path().join("srv/backups/a/b.txt")).unwrap(),
        b"hello"
    );
}

/// Managed identity: the token comes from the (fake) IMDS with `Metadata: true`, and the blob
/// request carries it as a bearer token. Nothing else is contacted.
#[test]
fn managed_identity_token_from_imds() {
    let imds = fakehttp::serve(|r| {
        if r.target.starts_with("/metadata/identity/oauth2/token?") {
            let exp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3600;
            let body = format!(r#"{{"access_token":"tok123","expires_on":"{exp}"}}"#);
            (200, vec![], body.into_bytes())
        } else {
            (404, vec![], vec![])
        }
    });
    let blob = fakehttp::serve(|_| {
        (
            404,
            vec![("x-ms-error-code".into(), "BlobNotFound".into())],
            vec![],
        )
    });
    let host = Host::with_root("/nonexistent");
    let mut cx = ctx(&host, &no_env);
    cx.on_azure = true;
    cx.imds_endpoint = imds.base.clone();
    let mut d = Destination::parse("azure://c/p").unwrap();
    d.account = Some("acct".into());
    d.managed_identity = true;
    d.endpoint = Some(format!("{}/acct", blob.base));
    let s = open(&d, &cx).unwrap();
    let r = crate::net::block_on(async { s.store.head(&s.key("x")).await }).unwrap();
    assert!(
        matches!(r, Err(object_store::Error::NotFound { .. })),
        "{r:?}"
    );
    let t = imds.seen.lock().unwrap();
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].header("metadata"), Some("true"));
    assert!(
        t[0].target
            .contains("resource=https%3A%2F%2Fstorage.azure.com"),
        "{}",
        t[0].target
    );
    let b = blob.seen.lock().unwrap();
    assert_eq!(b[0].method, "HEAD");
    assert_eq!(b[0].target, "/acct/c/p/x");
    assert_eq!(b[0].header("authorization"), Some("Bearer tok123"));
}
