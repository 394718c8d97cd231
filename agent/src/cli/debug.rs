//! `dbhost debug ...`.

use super::{Ctx, OutputFormat};
use crate::detect::{capture, DetectOptions};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum DebugCmd {
    /// Collect exactly the files detection reads into a tar.gz with a sha256 manifest, so this
    /// host can be replayed elsewhere with --sysroot.
    CaptureHost {
        /// Output archive (.tar.gz).
        out: PathBuf,
        /// Do not query Azure IMDS while capturing.
        #[arg(long)]
        no_imds: bool,
    },
    /// Open a backup destination and list what is under its prefix (credentials, reachability).
    Destination {
        #[command(flatten)]
        dest: super::backup::DestArgs,
        /// List at most this many objects.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Run one SQL statement on a server over its own protocol and print the rows (support and
    /// tests: proves dbhost can log in where a step would).
    Sql(SqlArgs),
    /// Resolve a host name the way dbhost does (IP literal, /etc/hosts, DNS; no libc).
    Resolve {
        /// Host name or address.
        name: String,
        /// Port to pair it with.
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Probe image files or block devices (read-only) as detection probes a disk: signatures
    /// found, and whether the contents are proven blank or would be refused, and why.
    Probe {
        /// Image files or block devices.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Write man pages (section 8) generated from the CLI definition into DIR.
    #[command(hide = true)]
    GenMan {
        /// Output directory.
        dir: PathBuf,
    },
    /// Write bash, zsh and fish completions generated from the CLI definition into DIR.
    #[command(hide = true)]
    GenCompletions {
        /// Output directory.
        dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// The local server of this engine (its socket and login, as every dbhost step uses).
    #[arg(long, value_enum, conflicts_with_all = ["protocol", "socket", "host"])]
    pub local: Option<crate::profile::Engine>,
    /// Wire protocol for --socket/--host.
    #[arg(long, value_enum)]
    pub protocol: Option<ProtocolArg>,
    /// Unix socket file.
    #[arg(long, conflicts_with = "host")]
    pub socket: Option<PathBuf>,
    /// TCP host (name or address).
    #[arg(long)]
    pub host: Option<String>,
    /// TCP port (default 5432 / 3306).
    #[arg(long)]
    pub port: Option<u16>,
    /// Login name (default postgres / root).
    #[arg(long)]
    pub user: Option<String>,
    /// Environment variable holding the password.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Database to connect to (PostgreSQL).
    #[arg(long)]
    pub database: Option<String>,
    /// Connect with this OS user's uid (PostgreSQL peer authentication).
    #[arg(long, value_name = "USER")]
    pub as_os_user: Option<String>,
    /// A PostgreSQL physical replication session (replication commands).
    #[arg(long)]
    pub replication: bool,
    /// The statement.
    pub sql: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ProtocolArg {
    Postgres,
    Mysql,
}

fn sql_target(ctx: &Ctx, a: &SqlArgs) -> anyhow::Result<crate::db::client::Target> {
    use crate::db::client::{resolve, Endpoint, Protocol, Target};
    if let Some(e) = a.local {
        let engine = crate::apply::db::engine_of(&e)
            .ok_or_else(|| crate::exit::Failure::Usage("--local none names no server".into()))?;
        let inst =
            crate::db::engine::discover_with(&ctx.host, &crate::host::RealExec, engine, false)?;
        return crate::db::local::targets(&ctx.host, &inst)
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no local login for {}", engine.name()));
    }
    let protocol = match a.protocol {
        Some(ProtocolArg::Postgres) => Protocol::Postgres,
        Some(ProtocolArg::Mysql) => Protocol::Mysql,
        None => {
            return Err(crate::exit::Failure::Usage(
                "give --local ENGINE, or --protocol with --socket or --host".into(),
            )
            .into())
        }
    };
    let (port, user) = match protocol {
        Protocol::Postgres => (5432, "postgres"),
        Protocol::Mysql => (3306, "root"),
    };
    let endpoint = match (&a.socket, &a.host) {
        (Some(s), _) => Endpoint::Unix(s.clone()),
        (None, Some(h)) => resolve(&ctx.host, h, a.port.unwrap_or(port))?,
        (None, None) => {
            return Err(crate::exit::Failure::Usage("give --socket or --host".into()).into())
        }
    };
    let mut t = Target::new(protocol, endpoint, a.user.as_deref().unwrap_or(user));
    if let Some(v) = &a.password_env {
        t.password = Some(std::env::var(v).map_err(|_| {
            crate::exit::Failure::Usage(format!("--password-env {v}: the variable is not set"))
        })?);
    }
    if let Some(d) = &a.database {
        t = t.database(d);
    }
    if let Some(u) = &a.as_os_user {
        let acct = crate::host::users::lookup(&ctx.host, u)
            .ok_or_else(|| crate::exit::Failure::Usage(format!("no OS user {u}")))?;
        t = t.as_uid(Some(acct.uid));
    }
    if a.replication {
        t = t.replication();
    }
    Ok(t)
}

pub fn run(ctx: &Ctx, cmd: DebugCmd) -> anyhow::Result<i32> {
    match cmd {
        DebugCmd::Sql(a) => {
            let t = sql_target(ctx, &a)?;
            let rows = crate::db::client::query(&crate::db::client::REAL, &t, &a.sql)?;
            match ctx.output {
                OutputFormat::Json => super::output::print_json(&serde_json::json!({
                    "target": t.to_string(), "columns": rows.columns,
                    "rows": rows.rows, "affected": rows.affected,
                }))?,
                OutputFormat::Text => {
                    for r in &rows.rows {
                        let cells: Vec<&str> =
                            r.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
                        crate::outln!("{}", cells.join("\t"));
                    }
                }
            }
            Ok(crate::exit::OK)
        }
        DebugCmd::Resolve { name, port } => {
            let e = crate::db::client::resolve(&ctx.host, &name, port)?;
            crate::outln!("{e}");
            Ok(crate::exit::OK)
        }
        DebugCmd::CaptureHost { out, no_imds } => {
            let opts = DetectOptions {
                query_imds: !no_imds,
                ..DetectOptions::default()
            };
            let s = capture::capture_host(&ctx.host, &opts, &out)?;
            match ctx.output {
                OutputFormat::Json => super::output::print_json(&serde_json::json!({
                    "archive": out.display().to_string(),
                    "files": s.files, "links": s.links, "dirs": s.dirs,
                    "disks": s.inventory.disks.len(),
                }))?,
                OutputFormat::Text => crate::outln!(
                    "wrote {}: {} files, {} links, {} directories, {} disks (no disk contents; replay: tar -xzf {} -C DIR && dbhost detect --sysroot DIR)",
                    out.display(),
                    s.files,
                    s.links,
                    s.dirs,
                    s.inventory.disks.len(),
                    out.display()
                ),
            }
            Ok(crate::exit::OK)
        }
        DebugCmd::Destination { dest, limit } => {
            let d = dest.resolve(None)?;
            let store = super::backup::open_destination(ctx, &d, None)?;
            let keys = crate::net::block_on(crate::backup::object::list_keys(&store, limit))??;
            for k in &keys {
                crate::outln!("{k}");
            }
            crate::errln!("{}: {} object(s) listed", store.name, keys.len());
            Ok(crate::exit::OK)
        }
        DebugCmd::Probe { paths } => {
            let probes = paths
                .iter()
                .map(|p| crate::detect::probe_image(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            match ctx.output {
                OutputFormat::Json => super::output::print_json(&probes)?,
                OutputFormat::Text => {
                    for p in &probes {
                        crate::outln!("{}", probe_line(p));
                    }
                }
            }
            Ok(crate::exit::OK)
        }
        DebugCmd::GenMan { dir } => {
            for p in super::gen_docs::write_man(&dir)? {
                crate::outln!("{}", p.display());
            }
            Ok(crate::exit::OK)
        }
        DebugCmd::GenCompletions { dir } => {
            for p in super::gen_docs::write_completions(&dir)? {
                crate::outln!("{}", p.display());
            }
            Ok(crate::exit::OK)
        }
    }
}

/// One image's verdict as a line: "PATH (SIZE bytes): VERDICT[: reasons]".
fn probe_line(p: &crate::detect::ImageProbe) -> String {
    let what = match p.verdict {
        "blank" => "blank (no signature; the blank-proof regions read as zeros)".to_string(),
        "md-member" => format!(
            "md member (not blank; plan may adopt its array): {}",
            p.signatures
                .iter()
                .map(|s| format!("{} at byte {}", s.kind, s.offset))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        v => format!("{v}: {}", p.reason),
    };
    format!("{} ({} bytes): {what}", p.path, p.size_bytes)
}
