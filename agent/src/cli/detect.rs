//! `dbhost detect`: the block-device inventory as a table, or `--output json` (the
//! [`Inventory`](crate::detect::Inventory), schema in `docs/detect-schema.md`).

use super::{Ctx, OutputFormat};
use crate::detect::{self, CacheMode, DetectOptions, Disk, DiskRole, Inventory};
use clap::Args;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Azure IMDS base URL (http://HOST:PORT); default: $DBHOST_IMDS_ENDPOINT, else the real
    /// IMDS on the live host.
    #[arg(long, value_name = "URL")]
    pub imds_endpoint: Option<String>,
    /// Do not query Azure IMDS (cache modes stay "unknown").
    #[arg(long)]
    pub no_imds: bool,
}

pub fn run(ctx: &Ctx, args: DetectArgs) -> anyhow::Result<i32> {
    let opts = DetectOptions {
        imds_endpoint: args.imds_endpoint,
        query_imds: !args.no_imds,
        ..DetectOptions::default()
    };
    let inv = detect::detect(&ctx.host, &opts)?;
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&inv)?,
        OutputFormat::Text => print!("{}", render_table(&inv)),
    }
    Ok(crate::exit::OK)
}

/// Human-readable size (binary units).
pub fn human_size(b: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn role(d: &Disk) -> &'static str {
    match d.role {
        DiskRole::Os => "os",
        DiskRole::Resource => "resource",
        DiskRole::Local => "local",
        DiskRole::Data => "data",
        DiskRole::Unknown => "-",
    }
}

fn cache(c: CacheMode) -> &'static str {
    match c {
        CacheMode::None => "none",
        CacheMode::ReadOnly => "readonly",
        CacheMode::ReadWrite => "readwrite",
        CacheMode::Unknown => "?",
    }
}

/// The `dbhost detect` table.
pub fn render_table(inv: &Inventory) -> String {
    let mut out = format!(
        "platform: {}   kernel: {}   imds: {}\n",
        inv.platform,
        inv.kernel.as_deref().unwrap_or("?"),
        inv.imds
    );
    let rows: Vec<[String; 7]> = inv
        .disks
        .iter()
        .map(|d| {
            [
                d.name.clone(),
                human_size(d.size_bytes),
                role(d).to_string(),
                d.lun.map_or("-".into(), |l| l.to_string()),
                cache(d.cache_mode).to_string(),
                d.stable_id().unwrap_or("-").to_string(),
                if d.is_candidate() {
                    match &d.md {
                        Some(m) => format!(
                            "candidate, md member of {:?} ({}) role {} of {}",
                            m.name,
                            m.array_uuid,
                            m.role.map_or("spare".into(), |r| r.to_string()),
                            m.raid_disks
                        ),
                        None => "candidate".to_string(),
                    }
                } else {
                    format!(
                        "refused: {}",
                        d.refusals
                            .iter()
                            .map(|r| r.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                },
            ]
        })
        .collect();
    let head = ["NAME", "SIZE", "ROLE", "LUN", "CACHE", "BY-ID", "VERDICT"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(6) {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i < 6 {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            } else {
                s.push_str(c);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&line(head.to_vec()));
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    for d in &inv.disks {
        if !d.missing_attributes.is_empty() {
            out.push_str(&format!(
                "note: {}: could not read {}\n",
                d.name,
                d.missing_attributes.join(", ")
            ));
        }
    }
    let n = inv.disks.iter().filter(|d| d.is_candidate()).count();
    out.push_str(&format!("{n} data candidate(s)\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(128 << 30), "128.0 GiB");
    }
}
