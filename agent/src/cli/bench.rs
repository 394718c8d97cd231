//! `dbhost bench DEVICE|DIR`: O_DIRECT sequential 1 MiB and random 16 KiB I/O.

use super::{Ctx, OutputFormat};
use crate::tune::bench::{self, parse_size, BenchOptions, BenchReport, Pattern};
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A block device (read patterns only, unless --destructive and the device is blank) or a
    /// directory on a mounted filesystem (every pattern, in a scratch file removed afterwards).
    #[arg(value_name = "DEVICE|DIR", required_unless_present = "compare")]
    pub target: Option<PathBuf>,
    /// Instead of benchmarking, compare two saved `--output json` reports: print per pattern
    /// array / (N × member) — MB/s for sequential, IOPS for random patterns.
    #[arg(long, num_args = 2, value_names = ["MEMBER_JSON", "ARRAY_JSON"], requires = "members", conflicts_with = "target")]
    pub compare: Option<Vec<PathBuf>>,
    /// Number of array members, for --compare.
    #[arg(long, value_name = "N")]
    pub members: Option<u32>,
    /// Seconds per pattern.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Outstanding I/Os (one thread each); aim for 8-16 per disk of the array.
    #[arg(long, short = 'q', default_value_t = 16)]
    pub queue_depth: u32,
    /// Scratch file size in a directory; the region written on a device (K, M, G suffixes).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub size: u64,
    /// At most this many bytes per pattern (K, M, G suffixes).
    #[arg(long, default_value = "16G", value_parser = parse_size)]
    pub max_bytes: u64,
    /// Allow write patterns on a block device; refused unless the device is blank (first
    /// 64 KiB and last 1 MiB zero) and not in use. Writes zeros.
    #[arg(long)]
    pub destructive: bool,
    /// Patterns to run (repeatable; default: all four).
    #[arg(long = "pattern", value_enum)]
    pub patterns: Vec<Pattern>,
}

fn load(p: &std::path::Path) -> anyhow::Result<BenchReport> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a `dbhost bench --output json` report",
            p.display()
        )
    })
}

fn compare(ctx: &Ctx, files: &[PathBuf], members: u32) -> anyhow::Result<i32> {
    let (member, array) = (load(&files[0])?, load(&files[1])?);
    let r = bench::ratios(&member, &array, members);
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&serde_json::json!({
            "member": member.target, "array": array.target, "members": members, "ratios": r,
        }))?,
        OutputFormat::Text => {
            crate::outln!(
                "array {} vs {members} x member {}",
                array.target,
                member.target
            );
            crate::outln!(
                "{:<11} {:>6} {:>10} {:>10} {:>7}",
                "PATTERN",
                "METRIC",
                "MEMBER",
                "ARRAY",
                "RATIO"
            );
            for x in &r {
                crate::outln!(
                    "{:<11} {:>6} {:>10.1} {:>10.1} {:>7.2}",
                    x.pattern.name(),
                    x.metric,
                    x.member,
                    x.array,
                    x.ratio
                );
            }
        }
    }
    Ok(crate::exit::OK)
}

pub fn run(ctx: &Ctx, a: BenchArgs) -> anyhow::Result<i32> {
    if let Some(files) = &a.compare {
        return compare(ctx, files, a.members.unwrap_or(1).max(1));
    }
    let target = a
        .target
        .clone()
        .expect("clap requires a target without --compare");
    if a.destructive {
        ctx.require_live("bench --destructive")?;
    }
    if a.seconds.is_nan() || a.seconds <= 0.0 {
        return Err(crate::exit::Failure::Usage("--seconds must be positive".into()).into());
    }
    let opts = BenchOptions {
        seconds: a.seconds,
        queue_depth: a.queue_depth.max(1),
        size: a.size,
        max_bytes: a.max_bytes,
        destructive: a.destructive,
        patterns: if a.patterns.is_empty() {
            Pattern::ALL.to_vec()
        } else {
            a.patterns.clone()
        },
    };
    let rep = bench::bench(&ctx.host, &target, &opts)?;
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&rep)?,
        OutputFormat::Text => print_text(&rep),
    }
    Ok(crate::exit::OK)
}

fn print_text(r: &BenchReport) {
    let kind = match r.kind {
        bench::TargetKind::BlockDevice => "block device",
        bench::TargetKind::ScratchFile => "scratch file in directory",
    };
    crate::outln!(
        "dbhost bench {}: {kind}, {} MiB read region, queue depth {}, {} s per pattern",
        r.target,
        r.read_region / (1024 * 1024),
        r.queue_depth,
        r.seconds_per_pattern
    );
    crate::outln!(
        "{:<11} {:>7} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "PATTERN",
        "BLOCK",
        "MB/s",
        "IOPS",
        "MEAN ms",
        "P50 ms",
        "P99 ms",
        "MAX ms"
    );
    let ms = |us: f64| us / 1000.0;
    for x in &r.results {
        let bs = if x.block_size >= 1024 * 1024 {
            format!("{}M", x.block_size / (1024 * 1024))
        } else {
            format!("{}K", x.block_size / 1024)
        };
        crate::outln!(
            "{:<11} {:>7} {:>10.1} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            x.pattern.name(),
            bs,
            x.mb_per_s,
            x.iops,
            ms(x.lat_mean_us),
            ms(x.lat_p50_us as f64),
            ms(x.lat_p99_us as f64),
            ms(x.lat_max_us as f64)
        );
    }
    for s in &r.skipped {
        crate::outln!("skipped {}: {}", s.pattern.name(), s.reason);
    }
    for n in &r.notes {
        crate::outln!("note: {n}");
    }
}
