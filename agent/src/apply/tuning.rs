//! The tuning step of `apply`: compute the knob set from facts and the profile, then apply it
//! read-compare-write (a second run changes nothing).

use super::step::{ApplyCx, Observation, Outcome, Step};
use crate::plan::Plan;
use crate::profile::Profile;
use crate::tune::{self, DiskCaps, Engine, GatherHints, Overrides};
use anyhow::Result;

pub struct TuneStep {
    enabled: bool,
    overrides: Overrides,
    engine: Engine,
    caps: DiskCaps,
    /// Single-disk profiles: the disk's kernel name.
    disks: Vec<String>,
    /// `/dev/md/<name>` when the profile builds an array (it may not exist yet in a dry run).
    array_link: Option<String>,
}

fn toml_to_string(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What a profile says about tuning, shared by `apply`'s tune step and `dbhost tune --profile`.
#[derive(Debug, Clone)]
pub struct ProfileTuning {
    pub enabled: bool,
    pub overrides: Overrides,
    pub engine: Engine,
    pub caps: DiskCaps,
    /// `/dev/md/<name>` when the profile builds an array.
    pub array_link: Option<String>,
}

impl ProfileTuning {
    pub fn from_profile(profile: &Profile) -> Self {
        let engine = profile.database.engine;
        let t = &profile.tuning;
        ProfileTuning {
            enabled: t.enabled,
            overrides: t
                .overrides
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_string(v)))
                .collect(),
            engine,
            caps: DiskCaps {
                mbps: t.disk_mbps,
                iops: t.disk_iops,
                account_type: None,
                source: (t.disk_mbps.is_some() || t.disk_iops.is_some())
                    .then(|| "profile".to_string()),
            },
            array_link: (profile.array.level == crate::profile::Level::Raid0)
                .then(|| format!("/dev/md/{}", profile.array.name)),
        }
    }
}

impl TuneStep {
    pub fn new(profile: &Profile, plan: &Plan) -> Self {
        let pt = ProfileTuning::from_profile(profile);
        TuneStep {
            enabled: pt.enabled,
            overrides: pt.overrides,
            engine: pt.engine,
            caps: pt.caps,
            array_link: plan.array.as_ref().map(|a| format!("/dev/md/{}", a.name)),
            disks: if plan.array.is_none() {
                plan.members.iter().map(|m| m.name.clone()).collect()
            } else {
                Vec::new()
            },
        }
    }

    fn compute(&self, cx: &ApplyCx<'_>) -> Result<(tune::TuneSet, tune::TuneFacts)> {
        let md = cx.facts.get("md.devnm").cloned().or_else(|| {
            self.array_link
                .as_deref()
                .and_then(|l| crate::md::array::resolve_md(cx.host, l))
        });
        let hints = GatherHints {
            engine: Some(self.engine),
            md,
            disks: self.disks.clone(),
            default_caps: self.caps.clone(),
            ..Default::default()
        };
        let facts = tune::gather(cx.host, &hints)?;
        let set = tune::compute(&facts, &self.overrides, self.enabled)?;
        Ok((set, facts))
    }
}

impl Step for TuneStep {
    fn id(&self) -> String {
        "tune".into()
    }
    fn describe(&self) -> String {
        if self.enabled {
            format!(
                "tune block queues, sysctls and {} settings persistently ({} override(s)); see `dbhost tune --explain`",
                self.engine,
                self.overrides.len()
            )
        } else {
            "tuning off: remove dbhost's tuning files if any".into()
        }
    }
    fn observe(&self, cx: &mut ApplyCx<'_>) -> Result<Observation> {
        if let Some(link) = &self.array_link {
            if !cx.host.path(link).exists() {
                // A dry run before the array exists: nothing to measure yet.
                return Ok(Observation::Todo(format!("once {link} exists")));
            }
        }
        let (set, facts) = self.compute(cx)?;
        let rep = tune::observe(cx.host, &set);
        let stale_knobs = rep.knobs.iter().filter(|k| !k.in_effect).count();
        let stale_files = tune::render::render_all(&set, &facts)
            .into_iter()
            .filter(|r| match &r.body {
                tune::render::Body::File { content, .. } => {
                    std::fs::read_to_string(cx.host.path(&r.path))
                        .ok()
                        .as_deref()
                        != Some(content.as_str())
                }
                tune::render::Body::Symlink { target } => std::fs::read_link(cx.host.path(&r.path))
                    .map(|t| t.display().to_string() != *target)
                    .unwrap_or(true),
            })
            .count();
        if stale_knobs == 0 && stale_files == 0 {
            Ok(Observation::Done(format!(
                "{} knob(s) in effect",
                rep.knobs.len()
            )))
        } else {
            Ok(Observation::Todo(format!(
                "{stale_knobs} knob(s) to set, {stale_files} file(s) to write"
            )))
        }
    }
    fn apply(&self, cx: &mut ApplyCx<'_>) -> Result<Outcome> {
        let (set, facts) = self.compute(cx)?;
        for r in tune::render::render_all(&set, &facts) {
            if matches!(r.body, tune::render::Body::File { .. }) {
                cx.before_modify(&r.path)?;
            }
        }
        let rep = tune::apply(cx.host, cx.exec, &set, &facts)?;
        Ok(if rep.changed {
            let n = rep
                .knobs
                .iter()
                .filter(|k| matches!(k.outcome, Some(tune::apply::Outcome::Changed)))
                .count();
            Outcome::Changed(format!("{n} knob(s) changed"))
        } else {
            Outcome::Unchanged
        })
    }
}
