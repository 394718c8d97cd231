//! `dbhost generalize --check`: every op observed (what generalize would still remove or
//! change) plus a content scanner for secrets that no op names (private keys anywhere, database
//! passwords in option files, .pgpass, Azure provisioning files, histories). Read-only; works on
//! the live root or a mounted image (`--sysroot`).

use super::{build_ops, edits, Category, Options, Runner};
use crate::host::{Exec, Host};
use anyhow::Result;
use serde::Serialize;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One leftover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub category: Category,
    /// The op id (e.g. `os.ssh-host-keys`) or scanner rule (e.g. `secret.private-key`).
    pub id: String,
    /// In-host path or action name.
    pub path: String,
    pub detail: String,
}

/// Directories the secret scanner walks (each on its own file system only).
pub const SCAN_ROOTS: &[&str] = &[
    "/etc",
    "/root",
    "/home",
    "/var/lib",
    "/srv",
    "/opt",
    "/usr/local/etc",
];
/// Large trees without secrets, skipped for speed.
const SKIP_DIRS: &[&str] = &[
    "/var/lib/dpkg",
    "/var/lib/apt",
    "/var/lib/docker",
    "/var/lib/containers",
    "/etc/ssl/certs",
];
const MAX_FILE: u64 = 1 << 20;
const READ_PREFIX: u64 = 64 << 10;

/// Scan for leftovers: op observations (ops marked `in_check`) plus scanner findings not
/// already covered by an op path.
pub fn check(host: &Host, exec: &dyn Exec, opts: &Options) -> Result<Vec<Finding>> {
    let ops = build_ops(host, opts)?;
    let runner = Runner {
        host,
        exec,
        live: false,
    };
    let mut out = Vec::new();
    for (op, rep) in ops.iter().zip(runner.observe(&ops)?) {
        if !op.in_check {
            continue;
        }
        for item in rep.items {
            out.push(Finding {
                category: op.category,
                id: op.id.to_string(),
                path: item.target,
                detail: item.change,
            });
        }
    }
    let covered: Vec<PathBuf> = out.iter().map(|f| PathBuf::from(&f.path)).collect();
    for f in scan_secrets(host) {
        let p = Path::new(&f.path);
        if !covered.iter().any(|c| p.starts_with(c)) {
            out.push(f);
        }
    }
    Ok(out)
}

/// The content/name scanner over [`SCAN_ROOTS`].
pub fn scan_secrets(host: &Host) -> Vec<Finding> {
    let mut out = Vec::new();
    for root in SCAN_ROOTS {
        let abs = PathBuf::from(root);
        let Ok(m) = fs::symlink_metadata(host.path(&abs)) else {
            continue;
        };
        if m.is_dir() {
            walk(host, &abs, m.dev(), 0, &mut out);
        }
    }
    out
}

fn walk(host: &Host, dir: &Path, dev: u64, depth: usize, out: &mut Vec<Finding>) {
    if depth > 16 || SKIP_DIRS.iter().any(|s| dir == Path::new(s)) {
        return;
    }
    let Ok(rd) = fs::read_dir(host.path(dir)) else {
        return;
    };
    let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let abs = dir.join(&name);
        let Ok(m) = fs::symlink_metadata(host.path(&abs)) else {
            continue;
        };
        if m.dev() != dev {
            continue;
        }
        if m.is_dir() {
            walk(host, &abs, dev, depth + 1, out);
        } else if m.is_file() {
            if let Some((id, detail)) = classify(host, &abs, m.len()) {
                out.push(Finding {
                    category: Category::Secrets,
                    id: id.to_string(),
                    path: abs.display().to_string(),
                    detail,
                });
            }
        }
    }
}

fn classify(host: &Host, abs: &Path, len: u64) -> Option<(&'static str, String)> {
    let name = abs.file_name()?.to_string_lossy().into_owned();
    if super::ops::HISTORIES.contains(&name.as_str()) && len > 0 {
        return Some(("secret.history", "shell or client history".into()));
    }
    match name.as_str() {
        ".pgpass" => return Some(("secret.db-password", "PostgreSQL password file".into())),
        ".mylogin.cnf" => {
            return Some((
                "secret.db-password",
                "MySQL login path file (obfuscated passwords)".into(),
            ))
        }
        "ovf-env.xml" | "CustomData" => {
            return Some((
                "secret.azure-provisioning",
                "Azure provisioning data (CustomData, admin user)".into(),
            ))
        }
        _ => {}
    }
    if len == 0 || len > MAX_FILE {
        return None;
    }
    let mut buf = Vec::new();
    fs::File::open(host.path(abs))
        .ok()?
        .take(READ_PREFIX)
        .read_to_end(&mut buf)
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    if let Some(line) = text
        .lines()
        .find(|l| l.starts_with("-----BEGIN ") && l.trim_end().ends_with("PRIVATE KEY-----"))
    {
        return Some((
            "secret.private-key",
            format!("PEM private key ({})", line.trim()),
        ));
    }
    let in_mysql_conf = abs.starts_with("/etc/mysql") || abs.starts_with("/etc/my.cnf.d");
    let cnf = name == ".my.cnf" || name == "my.cnf" || (in_mysql_conf && name.ends_with(".cnf"));
    if cnf && edits::cnf_has_password(&text) {
        return Some((
            "secret.db-password",
            "password in a MySQL option file".into(),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_finds_keys_and_passwords_but_not_public_material() {
        let d = tempfile::tempdir().unwrap();
        let h = Host::with_root(d.path());
        let w = |p: &str, s: &str| {
            let p = h.path(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, s).unwrap();
        };
        w(
            "/etc/myapp/tls.key",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
        );
        w(
            "/home/u/.ssh/id_ed25519",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n",
        );
        w("/home/u/.ssh/id_ed25519.pub", "ssh-ed25519 AAAA u@h\n");
        w(
            "/etc/ssl/certs/ca.pem",
            "-----BEGIN CERTIFICATE-----\nMII\n",
        );
        w(
            "/etc/mysql/conf.d/client.cnf",
            "[client]\nuser=app\npassword=hunter2\n",
        );
        w("/etc/mysql/conf.d/ok.cnf", "[client]\npassword =\n");
        w("/var/lib/postgresql/.pgpass", "*:*:*:app:pw\n");
        w("/var/lib/postgresql/.psql_history", "select 1;\n");
        let f = scan_secrets(&h);
        let paths: Vec<&str> = f.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "/etc/myapp/tls.key",
                "/etc/mysql/conf.d/client.cnf",
                "/home/u/.ssh/id_ed25519",
                "/var/lib/postgresql/.pgpass",
                "/var/lib/postgresql/.psql_history",
            ],
            "{f:?}"
        );
        assert!(f[0].detail.contains("BEGIN RSA PRIVATE KEY"));
    }
}
