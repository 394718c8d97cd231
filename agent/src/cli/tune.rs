//! `dbhost tune`: explain (default) or apply the computed tuning set.
//!
//! With `--profile P` the engine, the per-knob overrides, the per-disk caps, `tuning.enabled` and
//! the array (`/dev/md/<array.name>`) come from the profile, exactly as `apply` uses them; the
//! flags `--engine`, `--set`, `--disk-mbps`/`--disk-iops`, `--md` and `--off` take precedence.

use super::{Ctx, OutputFormat};
use crate::apply::tuning::ProfileTuning;
use crate::exit::Failure;
use crate::host::RealExec;
use crate::tune::apply::{FileOutcome, KnobReport, TuneReport};
use crate::tune::knobs::{human, knob_names};
use crate::tune::{self, DiskCaps, Engine, GatherHints, Overrides, TuneFacts};
use clap::Args;

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Take the engine, overrides, disk caps, `tuning.enabled` and the array from this profile
    /// (what `apply` uses); the other flags override it.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<std::path::PathBuf>,
    /// Print every knob with its current value, target, reason and the file that persists it
    /// (the default when --apply is not given).
    #[arg(long)]
    pub explain: bool,
    /// Write the persistence files and set the live values; a re-run changes nothing.
    #[arg(long)]
    pub apply: bool,
    /// Override a knob (repeatable), e.g. --set innodb_io_capacity=3000; the value `keep`
    /// leaves the knob untouched. `--list-knobs` names them all.
    #[arg(long = "set", value_name = "KNOB=VALUE")]
    pub set: Vec<String>,
    /// Database engine (default: guessed from the installed packages).
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// The md array to tune (default: the one running raid0 array).
    #[arg(long, value_name = "NAME")]
    pub md: Option<String>,
    /// A data disk to tune when there is no array (repeatable), e.g. --disk sdc.
    #[arg(long = "disk", value_name = "NAME")]
    pub disks: Vec<String>,
    /// Sustained bandwidth cap of each data disk in MB/s (when Azure IMDS does not tell).
    #[arg(long, value_name = "MBPS")]
    pub disk_mbps: Option<u64>,
    /// Sustained IOPS cap of each data disk (when Azure IMDS does not tell).
    #[arg(long, value_name = "IOPS")]
    pub disk_iops: Option<u64>,
    /// The VM's uncached disk IOPS cap, which bounds what the stripe delivers.
    #[arg(long, value_name = "IOPS")]
    pub vm_iops: Option<u64>,
    /// Tuning off (the profile's `tuning.enabled = false`): no knobs; with --apply, dbhost's
    /// tuning files are removed.
    #[arg(long)]
    pub off: bool,
    /// Also print the files dbhost writes (udev rules, sysctl.d, database drop-in, THP unit).
    #[arg(long)]
    pub show_files: bool,
    /// List every knob name and exit.
    #[arg(long)]
    pub list_knobs: bool,
}

/// `KNOB=VALUE` strings → overrides.
pub fn parse_sets(sets: &[String]) -> Result<Overrides, Failure> {
    let mut ov = Overrides::new();
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            return Err(Failure::Usage(format!(
                "--set {s}: expected KNOB=VALUE, e.g. --set innodb_io_capacity=3000"
            )));
        };
        ov.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(ov)
}

/// The gather hints, overrides and on/off switch from the flags over the profile (if any).
fn hints_for(
    host: &crate::host::Host,
    a: &TuneArgs,
    prof: Option<ProfileTuning>,
) -> Result<(GatherHints, Overrides, bool), Failure> {
    let flag_caps = a.disk_mbps.is_some() || a.disk_iops.is_some();
    let caps = match &prof {
        Some(p) if !flag_caps => p.caps.clone(),
        _ => DiskCaps {
            mbps: a.disk_mbps,
            iops: a.disk_iops,
            account_type: None,
            source: flag_caps.then(|| "--disk-iops".into()),
        },
    };
    let md = a.md.clone().or_else(|| {
        prof.as_ref()
            .and_then(|p| p.array_link.as_deref())
            .and_then(|l| crate::md::array::resolve_md(host, l))
    });
    let mut ov = prof
        .as_ref()
        .map(|p| p.overrides.clone())
        .unwrap_or_default();
    ov.extend(parse_sets(&a.set)?);
    let enabled = !a.off && prof.as_ref().is_none_or(|p| p.enabled);
    let hints = GatherHints {
        engine: a.engine.or(prof.as_ref().map(|p| p.engine)),
        md,
        disks: a.disks.clone(),
        default_caps: caps,
        vm_cap_iops: a.vm_iops,
        ..Default::default()
    };
    Ok((hints, ov, enabled))
}

pub fn run(ctx: &Ctx, a: TuneArgs) -> anyhow::Result<i32> {
    if a.list_knobs {
        for n in knob_names() {
            crate::outln!("{n}");
        }
        return Ok(crate::exit::OK);
    }
    let from_profile = match &a.profile {
        None => None,
        Some(p) => match crate::profile::load(p)? {
            Ok(prof) => Some(ProfileTuning::from_profile(&prof)),
            Err(errs) => return Ok(super::profile::report_errors(ctx, &errs)),
        },
    };
    if a.apply {
        ctx.require_live("tune --apply")?;
    }
    let (hints, ov, enabled) = hints_for(&ctx.host, &a, from_profile)?;
    let facts = tune::gather(&ctx.host, &hints)?;
    let set = tune::compute(&facts, &ov, enabled)?;
    let report = if a.apply {
        tune::apply(&ctx.host, &RealExec, &set, &facts)?
    } else {
        tune::observe(&ctx.host, &set)
    };
    let files = if a.show_files {
        tune::render::render_all(&set, &facts)
    } else {
        vec![]
    };
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&serde_json::json!({
            "facts": facts,
            "applied": a.apply,
            "report": report,
            "rendered": files,
        }))?,
        OutputFormat::Text => {
            print_text(&facts, &report, a.apply);
            for f in &files {
                match &f.body {
                    tune::render::Body::File { content, .. } => {
                        crate::outln!("\n==> {} <==\n{}", f.path, content.trim_end())
                    }
                    tune::render::Body::Symlink { target } => {
                        crate::outln!("\n==> {} -> {target}", f.path)
                    }
                }
            }
        }
    }
    Ok(crate::exit::OK)
}

fn summary(f: &TuneFacts) -> String {
    let ver = f
        .db_version
        .map(|(a, b, c)| format!(" {a}.{b}.{c}"))
        .unwrap_or_default();
    let disks: Vec<&str> = f.members.iter().map(|m| m.name.as_str()).collect();
    let dev = match &f.md {
        Some(md) => format!("{} over {}", md.name, disks.join(" ")),
        None => disks.join(" "),
    };
    let mount = match (&f.fs_type, &f.mount_point) {
        (Some(t), Some(m)) => format!(", {t} at {m}"),
        (None, Some(m)) => format!(", mounted at {m}"),
        _ => String::new(),
    };
    format!(
        "{}{ver}, {} vCPU, {} RAM, kernel {}.{}, {dev}{mount}",
        f.engine,
        f.cpus,
        human(f.ram_bytes),
        f.kernel.0,
        f.kernel.1
    )
}

fn state(k: &KnobReport, applied: bool) -> String {
    match (applied, k.outcome) {
        (true, Some(o)) => o.to_string(),
        _ if k.in_effect => "in effect".into(),
        _ => "to change".into(),
    }
}

fn print_text(f: &TuneFacts, r: &TuneReport, applied: bool) {
    crate::outln!("dbhost tune: {}", summary(f));
    if !r.knobs.is_empty() {
        let rows: Vec<[String; 6]> = r
            .knobs
            .iter()
            .map(|k| {
                [
                    k.knob.name.clone(),
                    k.knob.device.clone().unwrap_or_else(|| "-".into()),
                    k.current.clone().unwrap_or_else(|| "(unset)".into()),
                    k.knob.value.clone(),
                    if k.knob.persisted_in.is_empty() {
                        "(not persisted)".into()
                    } else {
                        k.knob.persisted_in.clone()
                    },
                    state(k, applied),
                ]
            })
            .collect();
        let head = [
            "KNOB",
            "DEVICE",
            "CURRENT",
            "TARGET",
            "PERSISTED IN",
            "STATE",
        ];
        let mut w = head.map(str::len);
        for row in &rows {
            for (i, c) in row.iter().enumerate() {
                w[i] = w[i].max(c.chars().count().min(48));
            }
        }
        let line = |cells: [&str; 6]| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i == 5 {
                    s.push_str(c);
                } else {
                    s.push_str(&format!("{c:<width$}  ", width = w[i]));
                }
            }
            s
        };
        crate::outln!("{}", line(head));
        for (row, k) in rows.iter().zip(&r.knobs) {
            crate::outln!(
                "{}",
                line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5]])
            );
            crate::outln!("    why: {}", k.knob.reason);
            if let Some(n) = &k.note {
                crate::outln!("    note: {n}");
            }
        }
    }
    for file in &r.files {
        let what = match file.outcome {
            FileOutcome::Written => "written",
            FileOutcome::Unchanged => "unchanged",
            FileOutcome::Removed => "removed",
        };
        crate::outln!("file {}: {what}", file.path);
    }
    for n in &r.notes {
        crate::outln!("note: {n}");
    }
    if applied {
        crate::outln!(
            "{}",
            if r.changed {
                "tuning applied (changes made)"
            } else {
                "tuning applied: nothing to change"
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_parsing() {
        let ov =
            parse_sets(&["innodb_io_capacity=3000".into(), "vm.swappiness = 5".into()]).unwrap();
        assert_eq!(ov["innodb_io_capacity"], "3000");
        assert_eq!(ov["vm.swappiness"], "5");
        let e = parse_sets(&["vm.swappiness".into()]).unwrap_err();
        assert_eq!(e.code(), crate::exit::USAGE);
    }

    fn args(extra: &[&str]) -> TuneArgs {
        #[derive(clap::Parser)]
        struct W {
            #[command(flatten)]
            a: TuneArgs,
        }
        let mut v = vec!["tune"];
        v.extend_from_slice(extra);
        <W as clap::Parser>::parse_from(v).a
    }

    const PROFILE: &str = r#"version = 1
[array]
name = "dbdata"
[database]
engine = "postgresql"
[tuning]
disk-mbps = 200
disk-iops = 5000
[tuning.overrides]
"vm.swappiness" = 7
random_page_cost = "keep"
"#;

    fn fake_host_with_array() -> (tempfile::TempDir, crate::host::Host) {
        let d = tempfile::tempdir().unwrap();
        let host = crate::host::Host::with_root(d.path());
        std::fs::create_dir_all(host.dev("md")).unwrap();
        std::os::unix::fs::symlink("../md127", host.dev("md/dbdata")).unwrap();
        std::fs::write(host.dev("md127"), b"").unwrap();
        std::fs::create_dir_all(host.sys("block/md127")).unwrap();
        (d, host)
    }

    #[test]
    fn profile_supplies_engine_caps_overrides_and_array() {
        let (_d, host) = fake_host_with_array();
        let prof = crate::profile::parse(PROFILE, std::path::Path::new("p.toml")).unwrap();
        let pt = ProfileTuning::from_profile(&prof);
        let (h, ov, on) = hints_for(&host, &args(&[]), Some(pt)).unwrap();
        assert!(on);
        assert_eq!(h.engine, Some(Engine::Postgresql));
        assert_eq!(h.md.as_deref(), Some("md127"));
        assert_eq!(h.default_caps.mbps, Some(200));
        assert_eq!(h.default_caps.iops, Some(5000));
        assert_eq!(ov["vm.swappiness"], "7");
        assert_eq!(ov["random_page_cost"], "keep");
    }

    #[test]
    fn flags_win_over_the_profile() {
        let (_d, host) = fake_host_with_array();
        let prof = crate::profile::parse(PROFILE, std::path::Path::new("p.toml")).unwrap();
        let a = args(&[
            "--engine",
            "mariadb",
            "--set",
            "vm.swappiness=1",
            "--disk-iops",
            "900",
            "--md",
            "md5",
            "--off",
        ]);
        let (h, ov, on) = hints_for(&host, &a, Some(ProfileTuning::from_profile(&prof))).unwrap();
        assert!(!on);
        assert_eq!(h.engine, Some(Engine::Mariadb));
        assert_eq!(h.md.as_deref(), Some("md5"));
        assert_eq!(
            (h.default_caps.mbps, h.default_caps.iops),
            (None, Some(900))
        );
        assert_eq!(ov["vm.swappiness"], "1");
    }

    #[test]
    fn profile_with_tuning_off_and_no_array() {
        let (_d, host) = fake_host_with_array();
        let text = "version = 1\n[disks]\nexpected-count = 1\n[array]\nlevel = \"none\"\n[tuning]\nenabled = false\n";
        let prof = crate::profile::parse(text, std::path::Path::new("p.toml")).unwrap();
        let (h, _, on) =
            hints_for(&host, &args(&[]), Some(ProfileTuning::from_profile(&prof))).unwrap();
        assert!(!on);
        assert_eq!(h.md, None);
    }
}
