//! `dbhost plan --profile FILE`: detect (read-only), then the pure plan. Prints the plan, or the
//! refusal with every disk and its reason (exit 3). A bad profile exits 2.

use super::{Ctx, OutputFormat};
use crate::plan;
use clap::Args;

use crate::detect as det;

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The profile (TOML).
    #[arg(long, value_name = "FILE")]
    pub profile: std::path::PathBuf,

    /// Plan against a saved inventory (`dbhost detect --output json`) instead of this host.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<std::path::PathBuf>,

    /// Show what `apply --wipe` would do: selected disks that only hold data nothing uses
    /// (a signature, unrecognized bytes) are cleared and used.
    #[arg(long)]
    pub wipe: bool,
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
    let opts = plan::PlanOptions { wipe: args.wipe };
    emit(
        ctx.output,
        &args.profile,
        plan::plan_with(&prof, &inv, opts),
    )
}

/// Print a plan or a refusal; returns the exit code (0, or 3 when refused).
pub fn emit(
    fmt: OutputFormat,
    profile: &std::path::Path,
    res: Result<plan::Plan, plan::PlanRefusal>,
) -> anyhow::Result<i32> {
    match (res, fmt) {
        (Ok(p), OutputFormat::Text) => {
            crate::outln!("plan for {}:", profile.display());
            crate::out!("{p}");
            Ok(crate::exit::OK)
        }
        (Ok(p), OutputFormat::Json) => {
            super::output::print_json(&serde_json::json!({"result": "plan", "plan": p}))?;
            Ok(crate::exit::OK)
        }
        (Err(r), OutputFormat::Text) => {
            crate::err!("dbhost: plan for {} {r}", profile.display());
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
