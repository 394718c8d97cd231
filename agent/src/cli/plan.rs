//! `dbhost plan --profile FILE`: detect (read-only), then the pure plan. Prints the plan, or the
//! refusal with every disk and its reason (exit 3). A bad profile exits 2.

use super::{Ctx, OutputFormat};
use crate::plan;
use clap::Args;

// Integration point. The detection room provides
//   `pub fn detect(host: &Host, opts: &DetectOptions) -> anyhow::Result<Inventory>`
// with `DetectOptions { imds_endpoint: Option<String>, .. } : Default`. Until that lands in this
// branch, `det` is a local shim with the same signature; after the merge, replace the shim module
// by `use crate::detect as det;` (nothing else changes).
use detect_shim as det;

mod detect_shim {
    use crate::detect::model::Inventory;
    use crate::host::Host;

    /// Mirrors the detect room's options (a subset of its fields).
    #[derive(Debug, Clone, Default)]
    pub struct DetectOptions {
        pub imds_endpoint: Option<String>,
        pub query_imds: bool,
    }

    pub fn detect(_host: &Host, opts: &DetectOptions) -> anyhow::Result<Inventory> {
        anyhow::bail!(
            "disk detection is not part of this build (detect room not merged yet; imds endpoint {:?}, query imds {}); use --inventory FILE",
            opts.imds_endpoint, opts.query_imds
        )
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The profile (TOML).
    #[arg(long, value_name = "FILE")]
    pub profile: std::path::PathBuf,

    /// Plan against a saved inventory (`dbhost detect --output json`) instead of this host.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<std::path::PathBuf>,
}

pub fn run(ctx: &Ctx, args: PlanArgs) -> anyhow::Result<i32> {
    use anyhow::Context;
    let prof = match crate::profile::load(&args.profile)? {
        Ok(p) => p,
        Err(errs) => return Ok(super::profile::report_errors(ctx, &errs)),
    };
    let inv = match &args.inventory {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading inventory {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("parsing inventory {}", path.display()))?
        }
        None => {
            let opts = det::DetectOptions {
                imds_endpoint: prof.disks.imds_endpoint.clone(),
                ..Default::default()
            };
            det::detect(&ctx.host, &opts).context("detecting disks")?
        }
    };
    emit(ctx.output, &args.profile, plan::plan(&prof, &inv))
}

/// Print a plan or a refusal; returns the exit code (0, or 3 when refused).
pub fn emit(
    fmt: OutputFormat,
    profile: &std::path::Path,
    res: Result<plan::Plan, plan::PlanRefusal>,
) -> anyhow::Result<i32> {
    match (res, fmt) {
        (Ok(p), OutputFormat::Text) => {
            println!("plan for {}:", profile.display());
            print!("{p}");
            Ok(crate::exit::OK)
        }
        (Ok(p), OutputFormat::Json) => {
            super::output::print_json(&serde_json::json!({"result": "plan", "plan": p}))?;
            Ok(crate::exit::OK)
        }
        (Err(r), OutputFormat::Text) => {
            eprint!("dbhost: plan for {} {r}", profile.display());
            Ok(crate::exit::REFUSED)
        }
        (Err(r), OutputFormat::Json) => {
            super::output::print_json(&serde_json::json!({
                "result": "refused",
                "exit_code": crate::exit::REFUSED,
                "refusal": r,
            }))?;
            Ok(crate::exit::REFUSED)
        }
    }
}
