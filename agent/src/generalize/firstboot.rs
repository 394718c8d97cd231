//! First boot of a VM deployed from a generalized image: two oneshot units armed by
//! [`super::STAMP`]. `pre-db` runs before sysinit.target (so before every database instance and
//! sshd); `post-db` runs after the database started, then removes the stamp.

use super::{db, edits, Category, Op, Target, STAMP};
use crate::host::{atomic_write, CommandSpec, Exec, Host};
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the first-boot units expect dbhost when the running binary lives in a temporary place.
pub const INSTALLED_BIN: &str = "/usr/local/sbin/dbhost";
/// The profile recorded by `generalize --profile` for `dbhost apply` on the first boot.
pub const PROFILE_COPY: &str = "/var/lib/dbhost/firstboot-profile.toml";
/// The conventional profile location (used when generalize got no --profile).
pub const DEFAULT_PROFILE: &str = "/etc/dbhost/profile.toml";
/// The server_id drop-in file name.
pub const IDENTITY_CNF: &str = "99-dbhost-identity.cnf";

pub const UNIT_PRE: &str = "dbhost-firstboot.service";
pub const UNIT_POST: &str = "dbhost-firstboot-db.service";
const UNIT_PRE_TEXT: &str = include_str!("../../units/dbhost-firstboot.service");
const UNIT_POST_TEXT: &str = include_str!("../../units/dbhost-firstboot-db.service");

/// The two unit files with the binary path filled in.
pub fn render_units(bin: &Path) -> [(&'static str, String, &'static str); 2] {
    let b = bin.display().to_string();
    [
        (
            UNIT_PRE,
            UNIT_PRE_TEXT.replace("@DBHOST@", &b),
            "sysinit.target",
        ),
        (
            UNIT_POST,
            UNIT_POST_TEXT.replace("@DBHOST@", &b),
            "multi-user.target",
        ),
    ]
}

/// Stamp content: which profile the first boot applies.
pub fn stamp_content(has_profile: bool) -> String {
    format!(
        "# written by `dbhost generalize`; removed by {UNIT_POST} on the first boot\nprofile={}\n",
        if has_profile { PROFILE_COPY } else { "" }
    )
}

fn stable_location(p: &Path) -> bool {
    p.starts_with("/usr") || p.starts_with("/opt")
}

/// Ops installing the binary (if it runs from a temporary place), the profile copy and units.
pub fn install_ops(_host: &Host, opts: &super::Options) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    let bin = match &opts.exe {
        Some(exe) if stable_location(exe) => exe.clone(),
        Some(exe) => {
            let mut op = Op::new(
                Category::FirstBoot,
                "firstboot.binary",
                format!(
                    "install dbhost at {INSTALLED_BIN} for the first-boot units (running from {})",
                    exe.display()
                ),
            );
            op.in_check = false;
            op.targets.push(Target::Install {
                from: exe.clone(),
                path: PathBuf::from(INSTALLED_BIN),
                mode: 0o755,
            });
            ops.push(op);
            PathBuf::from(INSTALLED_BIN)
        }
        None => PathBuf::from(INSTALLED_BIN),
    };
    if let Some(p) = &opts.profile {
        let mut op = Op::new(
            Category::FirstBoot,
            "firstboot.profile",
            format!(
                "record the profile {} for `dbhost apply` on first boot",
                p.display()
            ),
        );
        op.in_check = false;
        op.targets.push(Target::Install {
            from: p.clone(),
            path: PathBuf::from(PROFILE_COPY),
            mode: 0o600,
        });
        ops.push(op);
    }
    let mut op = Op::new(
        Category::FirstBoot,
        "firstboot.units",
        format!(
            "install and enable {UNIT_PRE} and {UNIT_POST} (ExecStart {})",
            bin.display()
        ),
    );
    op.in_check = false;
    for (name, text, wanted_by) in render_units(&bin) {
        let unit = PathBuf::from("/etc/systemd/system").join(name);
        op.targets.push(Target::Write {
            path: unit.clone(),
            content: text.into_bytes(),
            mode: 0o644,
        });
        op.targets.push(Target::Symlink {
            path: PathBuf::from("/etc/systemd/system")
                .join(format!("{wanted_by}.wants"))
                .join(name),
            to: unit,
        });
    }
    ops.push(op);
    Ok(ops)
}

/// Which phase `dbhost generalize --first-boot PHASE` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Before the database and sshd: server_id, SSH host keys, snakeoil key.
    PreDb,
    /// After the database started: verify regenerated identity, rotate debian-sys-maint,
    /// `dbhost apply`, remove the stamp.
    PostDb,
}

/// server_id (1..2^32-1) from a machine-id: its first 32 bits, 0 mapped to 1.
pub fn server_id_from_machine_id(mid: &str) -> Result<u32> {
    let mid = mid.trim();
    if mid.len() != 32 || !mid.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("machine-id {mid:?} is not initialized (expected 32 hex digits)");
    }
    let v = u32::from_str_radix(&mid[..8], 16).context("parsing machine-id")?;
    Ok(if v == 0 { 1 } else { v })
}

/// The option-file directory the server reads last-wins drop-ins from, if MySQL/MariaDB is here.
pub fn mysql_dropin_dir(host: &Host) -> Option<PathBuf> {
    [
        "/etc/mysql/mariadb.conf.d",
        "/etc/mysql/mysql.conf.d",
        "/etc/mysql/conf.d",
        "/etc/my.cnf.d",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|d| host.path(d).is_dir())
}

pub fn identity_cnf(server_id: u32) -> String {
    format!(
        "# Written by dbhost on the first boot of a generalized image: unique per host,\n\
         # derived from /etc/machine-id. Do not copy to other hosts.\n[mysqld]\nserver_id = {server_id}\n"
    )
}

fn stamp_profile(host: &Host) -> Option<PathBuf> {
    let text = fs::read_to_string(host.path(STAMP)).ok()?;
    let recorded = text
        .lines()
        .find_map(|l| l.strip_prefix("profile="))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    recorded
        .or_else(|| Some(PathBuf::from(DEFAULT_PROFILE)))
        .filter(|p| host.path(p).is_file())
}

/// Phase pre-db. Returns what was done, one line each.
pub fn run_pre(host: &Host, exec: &dyn Exec) -> Result<Vec<String>> {
    let mut done = Vec::new();
    if !host.path(STAMP).exists() {
        done.push(format!("{STAMP} absent: not a first boot, nothing to do"));
        return Ok(done);
    }
    if let Some(dir) = mysql_dropin_dir(host) {
        let mid =
            fs::read_to_string(host.path("/etc/machine-id")).context("reading /etc/machine-id")?;
        let id = server_id_from_machine_id(&mid)?;
        let p = host.path(&dir).join(IDENTITY_CNF);
        let changed = atomic_write(&p, identity_cnf(id).as_bytes(), 0o644)
            .with_context(|| format!("writing {}", p.display()))?;
        done.push(format!(
            "server_id = {id} in {} ({})",
            dir.join(IDENTITY_CNF).display(),
            if changed { "written" } else { "unchanged" }
        ));
    }
    let ssh = host.path("/etc/ssh");
    if ssh.is_dir() {
        let have_keys = fs::read_dir(&ssh)
            .map(|rd| {
                rd.flatten().any(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("ssh_host_") && n.ends_with("_key")
                })
            })
            .unwrap_or(false);
        if !have_keys {
            exec.run(&CommandSpec::new("ssh-keygen").arg("-A"))?;
            done.push("SSH host keys generated (ssh-keygen -A)".into());
        }
    }
    if host.path("/usr/sbin/make-ssl-cert").exists()
        && !host.path("/etc/ssl/private/ssl-cert-snakeoil.key").exists()
    {
        exec.run(
            &CommandSpec::new("make-ssl-cert")
                .args(["generate-default-snakeoil", "--force-overwrite"]),
        )?;
        done.push("snakeoil TLS key regenerated (make-ssl-cert)".into());
    }
    Ok(done)
}

/// The `[client]` user of debian.cnf.
pub fn debian_cnf_user(text: &str) -> Option<String> {
    let mut in_client = false;
    for l in text.lines() {
        let l = l.trim();
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            in_client = s.trim() == "client";
            continue;
        }
        if in_client {
            if let Some((k, v)) = l.split_once('=') {
                if k.trim() == "user" {
                    return Some(v.trim().to_string());
                }
            }
        }
    }
    None
}

fn random_password(host: &Host) -> Result<String> {
    let mut b = [0u8; 18];
    fs::File::open(host.dev("urandom"))
        .and_then(|mut f| f.read_exact(&mut b))
        .context("reading the random source")?;
    Ok(hex::encode(b))
}

/// Phase post-db. `exe`: this binary, for `dbhost apply`.
pub fn run_post(host: &Host, exec: &dyn Exec, exe: &Path) -> Result<Vec<String>> {
    let mut done = Vec::new();
    if !host.path(STAMP).exists() {
        done.push(format!("{STAMP} absent: not a first boot, nothing to do"));
        return Ok(done);
    }
    let server = db::running(host, db::MYSQLD_NAMES);
    // MySQL (not MariaDB) regenerates auto.cnf and its keys at startup: verify.
    if server.iter().any(|(_, n)| n == "mysqld") {
        if let Some(dd) = db::mysql_datadir(host, None) {
            let missing: Vec<&str> = ["auto.cnf", "server-key.pem", "private_key.pem"]
                .into_iter()
                .filter(|f| !host.path(&dd).join(f).exists())
                .collect();
            if missing.is_empty() {
                done.push("MySQL regenerated server_uuid (auto.cnf) and its keys".into());
            } else {
                tracing::warn!(
                    "MySQL did not regenerate {} in {}",
                    missing.join(", "),
                    dd.display()
                );
                done.push(format!("warning: not regenerated: {}", missing.join(", ")));
            }
        }
    }
    let debian = host.path("/etc/mysql/debian.cnf");
    if let Ok(text) = fs::read_to_string(&debian) {
        if debian_cnf_user(&text).as_deref() == Some("debian-sys-maint") {
            if server.is_empty() {
                bail!(
                    "the database server is not running: cannot rotate the debian-sys-maint \
                     password (the stamp stays; this runs again at the next boot)"
                );
            }
            let mut session = db::mysql_session(host, exec)?;
            let n = session
                .query("SELECT COUNT(*) FROM mysql.user WHERE User='debian-sys-maint'")?
                .scalar()
                .unwrap_or("0")
                .to_string();
            if n == "0" {
                done.push("debian-sys-maint does not exist: nothing to rotate".into());
            } else {
                let pw = random_password(host)?;
                // Over the protocol: the password is never on a command line.
                session.query(&format!(
                    "ALTER USER 'debian-sys-maint'@'localhost' IDENTIFIED BY {}",
                    crate::db::client::mysql::quote(&pw)
                ))?;
                let new = edits::set_passwords(&text, &pw);
                super::write_keeping_owner(&debian, new.as_bytes())?;
                done.push("debian-sys-maint password rotated (/etc/mysql/debian.cnf)".into());
            }
        }
    }
    match stamp_profile(host) {
        None => done.push("no profile recorded: `dbhost apply` skipped".into()),
        Some(p) => {
            let cmd = CommandSpec::new(&exe.display().to_string()).args([
                "apply",
                "--profile",
                &p.display().to_string(),
                "--yes",
                "--output",
                "json",
            ]);
            let out = exec.output(&cmd)?;
            let text = format!("{}{}", out.stdout, out.stderr);
            if out.status == 0 {
                done.push(format!("`{}` done: {}", cmd.display(), out.stdout.trim()));
            } else if text.contains("not implemented") {
                tracing::warn!("`{}`: {}", cmd.display(), text.trim());
                done.push(format!("`{}` not implemented in this build", cmd.display()));
            } else {
                bail!(
                    "`{}` exited with status {}: {}",
                    cmd.display(),
                    out.status,
                    text.trim()
                );
            }
        }
    }
    fs::remove_file(host.path(STAMP)).with_context(|| format!("removing {STAMP}"))?;
    done.push(format!("{STAMP} removed: first boot complete"));
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_id_derivation() {
        assert_eq!(
            server_id_from_machine_id("0000002a0123456789abcdef01234567\n").unwrap(),
            42
        );
        assert_eq!(
            server_id_from_machine_id("00000000ffffffffffffffffffffffff").unwrap(),
            1
        );
        assert!(server_id_from_machine_id("").is_err());
        assert!(server_id_from_machine_id("uninitialized").is_err());
    }

    #[test]
    fn units_render_and_name_the_binary() {
        let [(pre, pre_text, _), (post, post_text, _)] =
            render_units(Path::new("/usr/sbin/dbhost"));
        assert_eq!(pre, UNIT_PRE);
        assert_eq!(post, UNIT_POST);
        assert!(pre_text.contains("ExecStart=/usr/sbin/dbhost generalize --first-boot pre-db"));
        assert!(post_text.contains("ExecStart=/usr/sbin/dbhost generalize --first-boot post-db"));
        for t in [&pre_text, &post_text] {
            assert!(t.contains(&format!("ConditionPathExists={STAMP}")));
            assert!(!t.contains("@DBHOST@"), "placeholder left: {t}");
        }
        assert!(pre_text.contains("Before=sysinit.target"));
        assert!(post_text.contains("After=mariadb.service"));
        assert!(post_text.contains("Before=cloud-final.service"));
    }

    #[test]
    fn debian_cnf_parse() {
        let t = "[client]\nhost = localhost\nuser = debian-sys-maint\npassword =\n[mysql_upgrade]\nuser = x\n";
        assert_eq!(debian_cnf_user(t).as_deref(), Some("debian-sys-maint"));
        assert_eq!(
            edits::set_passwords(t, "N3W"),
            "[client]\nhost = localhost\nuser = debian-sys-maint\npassword = N3W\n[mysql_upgrade]\nuser = x\n"
        );
    }
}
