//! `dbhost detect`: the block-device inventory as a table, or `--output json` (the
//! [`Inventory`](crate::detect::Inventory), schema in `docs/detect-schema.md`).
//!
//! `--wait-disks DURATION`: wait (bounded) until the expected data disks are present, e.g. when
//! cloud-init runs before the cloud has attached every data disk. The waiting loop is generic: it
//! re-scans the inventory every [`POLL_INTERVAL`] and asks a predicate which expected disks are
//! still missing, stopping as soon as none are. On timeout the command exits 3 (refused for
//! safety) and names what is missing.
//!
//! What is expected comes from the profile's `[disks]` section (its selection: LUNs, serial/model
//! globs or every candidate; `expected-count`; each single LUN listed must be present), or from
//! `--min-disks N`. Any `Fn(&Inventory) -> Vec<String>` fits [`wait_for_disks`]; a stricter
//! predicate later could be "plan's disk selection is satisfied".

use super::{Ctx, OutputFormat};
use crate::detect::{self, CacheMode, DetectOptions, Disk, DiskRole, Inventory};
use crate::exit::Failure;
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the inventory is re-scanned while waiting for disks.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Azure IMDS base URL (http://HOST:PORT); default: $DBHOST_IMDS_ENDPOINT, else the real
    /// IMDS on the live host.
    #[arg(long, value_name = "URL")]
    pub imds_endpoint: Option<String>,
    /// Do not query Azure IMDS (cache modes stay "unknown").
    #[arg(long)]
    pub no_imds: bool,

    /// Wait up to DURATION (e.g. 120s, 5m) for the expected data disks to appear before
    /// reporting; exits 3 naming the missing disks if they do not. What is expected comes from
    /// --profile or --min-disks.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_disks: Option<Duration>,

    /// Profile whose [disks] section says which disks to wait for (with --wait-disks).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,

    /// Without a profile: wait for at least N data candidates (with --wait-disks).
    #[arg(long, value_name = "N")]
    pub min_disks: Option<usize>,
}

pub fn run(ctx: &Ctx, args: DetectArgs) -> anyhow::Result<i32> {
    let opts = DetectOptions {
        imds_endpoint: args.imds_endpoint.clone(),
        query_imds: !args.no_imds,
        ..DetectOptions::default()
    };
    let inv = match args.wait_disks {
        None => detect::detect(&ctx.host, &opts)?,
        Some(timeout) => {
            let expect = match expectation(&args)? {
                Ok(e) => e,
                Err(errs) => return Ok(super::profile::report_errors(ctx, &errs)),
            };
            let outcome = wait_for_disks(
                || detect::detect(&ctx.host, &opts),
                |inv| expect.missing(inv),
                timeout,
                &mut RealClock,
            )?;
            if !outcome.missing.is_empty() {
                return Err(Failure::Refused(format!(
                    "waited {}s for the expected data disks; still missing: {}",
                    outcome.waited.as_secs(),
                    outcome.missing.join("; ")
                ))
                .into());
            }
            tracing::info!(
                waited_s = outcome.waited.as_secs(),
                scans = outcome.scans,
                "expected disks present"
            );
            outcome.inventory
        }
    };
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&inv)?,
        OutputFormat::Text => crate::out!("{}", render_table(&inv)),
    }
    Ok(crate::exit::OK)
}

pub use crate::profile::units::human_size;

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
                        crate::detect::model::describe_refusals(&d.refusals)
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

fn expectation(
    args: &DetectArgs,
) -> anyhow::Result<Result<DiskExpectation, crate::profile::ProfileErrors>> {
    match (&args.profile, args.min_disks) {
        (Some(p), None) => {
            Ok(crate::profile::load(p)?.map(|prof| DiskExpectation::from_profile(&prof)))
        }
        (None, Some(n)) => Ok(Ok(DiskExpectation {
            min_candidates: n,
            ..DiskExpectation::default()
        })),
        (Some(_), Some(_)) => Err(Failure::Usage(
            "give either --profile or --min-disks with --wait-disks, not both".into(),
        )
        .into()),
        (None, None) => Err(Failure::Usage(
            "--wait-disks needs --profile FILE or --min-disks N to know which disks to wait for"
                .into(),
        )
        .into()),
    }
}

/// Which data disks must be present. Missing ones are described for a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskExpectation {
    /// At least this many selected data candidates.
    pub min_candidates: usize,
    /// These LUNs must each be present as a data candidate.
    pub luns: Vec<u32>,
    /// Which candidates count.
    pub select: Selector,
}

/// The profile's disk selection, as far as waiting is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selector {
    /// Every intrinsic data candidate.
    #[default]
    Any,
    /// Candidates whose LUN is in one of these specs.
    Luns(Vec<crate::profile::LunSpec>),
    /// Candidates whose serial matches one of `serial` or whose model matches one of `model`.
    Match {
        serial: Vec<String>,
        model: Vec<String>,
    },
}

impl Selector {
    fn selects(&self, d: &Disk) -> bool {
        use crate::profile::units::glob_match;
        match self {
            Selector::Any => true,
            Selector::Luns(specs) => d.lun.is_some_and(|l| specs.iter().any(|s| s.contains(l))),
            Selector::Match { serial, model } => {
                let any = |globs: &[String], v: &Option<String>| {
                    v.as_deref()
                        .is_some_and(|v| globs.iter().any(|g| glob_match(g, v)))
                };
                any(serial, &d.serial) || any(model, &d.model)
            }
        }
    }
}

impl DiskExpectation {
    /// From a profile's `[disks]`: its selection; `expected-count = N` needs N selected
    /// candidates ("all": at least one, and every single LUN listed).
    pub fn from_profile(p: &crate::profile::Profile) -> Self {
        use crate::profile::{ExpectedCount, LunSpec, SelectMode};
        let d = &p.disks;
        let (select, luns) = match d.select_mode() {
            SelectMode::AllCandidates => (Selector::Any, Vec::new()),
            SelectMode::Luns => {
                let specs = d.luns.clone().unwrap_or_default();
                let single = specs
                    .iter()
                    .filter_map(|s| match s {
                        LunSpec::One(l) => Some(*l),
                        LunSpec::Range(..) => None,
                    })
                    .collect();
                (Selector::Luns(specs), single)
            }
            SelectMode::Match => (
                Selector::Match {
                    serial: d.serial.clone().unwrap_or_default(),
                    model: d.model.clone().unwrap_or_default(),
                },
                Vec::new(),
            ),
        };
        let min_candidates = match d.expected_count {
            ExpectedCount::Exactly(n) => n as usize,
            ExpectedCount::All => luns.len().max(1),
        };
        DiskExpectation {
            min_candidates,
            luns,
            select,
        }
    }

    /// What is still missing (empty: satisfied).
    pub fn missing(&self, inv: &Inventory) -> Vec<String> {
        let candidates: Vec<_> = inv
            .disks
            .iter()
            .filter(|d| d.is_candidate() && self.select.selects(d))
            .collect();
        let mut out = Vec::new();
        for lun in &self.luns {
            if !candidates.iter().any(|d| d.lun == Some(*lun)) {
                match inv.disks.iter().find(|d| d.lun == Some(*lun)) {
                    Some(d) => out.push(format!(
                        "LUN {lun} ({}) is present but refused: {}",
                        d.name,
                        d.refusals
                            .iter()
                            .map(|r| r.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    None => out.push(format!("LUN {lun} is not attached")),
                }
            }
        }
        if candidates.len() < self.min_candidates {
            out.push(format!(
                "{} selected data candidate(s) present, {} expected",
                candidates.len(),
                self.min_candidates
            ));
        }
        out
    }
}

/// Time source for the waiting loop (a fake in tests, so they never sleep or time anything).
pub trait Clock {
    fn elapsed(&self) -> Duration;
    fn sleep(&mut self, d: Duration);
}

pub struct RealClock;

thread_local! {
    static START: Instant = Instant::now();
}

impl Clock for RealClock {
    fn elapsed(&self) -> Duration {
        START.with(|s| s.elapsed())
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d)
    }
}

#[derive(Debug)]
pub struct WaitOutcome {
    /// The last inventory scanned.
    pub inventory: Inventory,
    /// Empty when the expectation was met.
    pub missing: Vec<String>,
    pub waited: Duration,
    pub scans: u32,
}

/// Scan, and re-scan every [`POLL_INTERVAL`] until `missing` returns nothing or `timeout` has
/// passed. Always scans at least once; a scan error ends the wait with that error.
pub fn wait_for_disks<S, M>(
    mut scan: S,
    missing: M,
    timeout: Duration,
    clock: &mut dyn Clock,
) -> anyhow::Result<WaitOutcome>
where
    S: FnMut() -> anyhow::Result<Inventory>,
    M: Fn(&Inventory) -> Vec<String>,
{
    let start = clock.elapsed();
    let mut scans = 0;
    loop {
        let inventory = scan()?;
        scans += 1;
        let miss = missing(&inventory);
        let waited = clock.elapsed().saturating_sub(start);
        if miss.is_empty() || waited >= timeout {
            return Ok(WaitOutcome {
                inventory,
                missing: miss,
                waited,
                scans,
            });
        }
        tracing::info!(missing = %miss.join("; "), waited_s = waited.as_secs(), "waiting for data disks");
        clock.sleep(POLL_INTERVAL.min(timeout - waited));
    }
}

/// "90" (seconds), "120s", "5m", "2h", "1500ms".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("invalid duration {s:?}: expected a number with a unit, e.g. 120s or 5m")
    })?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => {
            return Err(format!(
                "invalid duration {s:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ))
        }
    };
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(128 << 30), "128.0 GiB");
    }

    use crate::detect::{Platform, Refusal, Transport, INVENTORY_SCHEMA};

    struct FakeClock(Duration);
    impl Clock for FakeClock {
        fn elapsed(&self) -> Duration {
            self.0
        }
        fn sleep(&mut self, d: Duration) {
            self.0 += d;
        }
    }

    fn disk(name: &str, lun: Option<u32>, refusals: Vec<Refusal>) -> Disk {
        Disk {
            name: name.into(),
            devnum: "8:0".into(),
            size_bytes: 1 << 30,
            logical_block_size: 512,
            physical_block_size: 4096,
            rotational: Some(false),
            read_only: false,
            removable: false,
            vendor: None,
            model: None,
            serial: None,
            transport: Transport::Scsi,
            by_id: vec![],
            by_path: vec![],
            scsi_address: None,
            nvme_nsid: None,
            partitions: vec![],
            holders: vec![],
            mountpoints: vec![],
            swap: false,
            write_cache: None,
            discard_granularity: None,
            role: DiskRole::Data,
            role_evidence: vec![],
            lun,
            cache_mode: CacheMode::Unknown,
            signatures: vec![],
            md: None,
            nonzero_at: None,
            missing_attributes: vec![],
            refusals,
        }
    }

    fn inv(disks: Vec<Disk>) -> Inventory {
        Inventory {
            schema: INVENTORY_SCHEMA,
            platform: Platform::Qemu,
            kernel: None,
            disks,
            arrays: vec![],
            imds: "not azure".into(),
        }
    }

    #[test]
    fn stops_as_soon_as_the_late_disk_appears() {
        let mut n = 0;
        let scan = || {
            n += 1;
            let mut d = vec![
                disk("vda", None, vec![Refusal::OsDisk]),
                disk("sda", Some(0), vec![]),
            ];
            if n >= 4 {
                d.push(disk("sdb", Some(1), vec![]));
            }
            Ok(inv(d))
        };
        let want = DiskExpectation {
            min_candidates: 2,
            luns: vec![0, 1],
            ..Default::default()
        };
        let mut clock = FakeClock(Duration::ZERO);
        let out = wait_for_disks(
            scan,
            |i| want.missing(i),
            Duration::from_secs(120),
            &mut clock,
        )
        .unwrap();
        assert!(out.missing.is_empty(), "{:?}", out.missing);
        assert_eq!(out.scans, 4);
        assert_eq!(out.waited, POLL_INTERVAL * 3);
        assert_eq!(out.inventory.disks.len(), 3);
    }

    #[test]
    fn times_out_naming_the_missing_lun() {
        let scan = || Ok(inv(vec![disk("sda", Some(0), vec![])]));
        let want = DiskExpectation {
            min_candidates: 2,
            luns: vec![0, 1],
            ..Default::default()
        };
        let mut clock = FakeClock(Duration::ZERO);
        let out = wait_for_disks(
            scan,
            |i| want.missing(i),
            Duration::from_secs(7),
            &mut clock,
        )
        .unwrap();
        assert_eq!(
            out.waited,
            Duration::from_secs(7),
            "the wait is bounded by the timeout, not overshot"
        );
        assert!(
            out.missing.iter().any(|m| m == "LUN 1 is not attached"),
            "{:?}",
            out.missing
        );
        assert!(out
            .missing
            .iter()
            .any(|m| m.contains("1 selected data candidate(s) present, 2 expected")));
    }

    #[test]
    fn a_refused_disk_does_not_count_and_the_reason_is_given() {
        let i = inv(vec![
            disk("sda", Some(0), vec![]),
            disk(
                "sdb",
                Some(1),
                vec![Refusal::Mounted {
                    mountpoint: "/mnt".into(),
                }],
            ),
        ]);
        let want = DiskExpectation {
            min_candidates: 2,
            luns: vec![1],
            ..Default::default()
        };
        let m = want.missing(&i);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(
            m[0].contains("LUN 1 (sdb) is present but refused: mounted at /mnt"),
            "{m:?}"
        );
    }

    #[test]
    fn no_wait_when_already_satisfied_and_zero_timeout_scans_once() {
        let mut clock = FakeClock(Duration::ZERO);
        let want = DiskExpectation {
            min_candidates: 1,
            luns: vec![],
            ..Default::default()
        };
        let out = wait_for_disks(
            || Ok(inv(vec![disk("sda", Some(0), vec![])])),
            |i| want.missing(i),
            Duration::from_secs(60),
            &mut clock,
        )
        .unwrap();
        assert_eq!((out.scans, out.waited), (1, Duration::ZERO));
        let out = wait_for_disks(
            || Ok(inv(vec![])),
            |i| want.missing(i),
            Duration::ZERO,
            &mut clock,
        )
        .unwrap();
        assert_eq!(out.scans, 1);
        assert!(!out.missing.is_empty());
    }

    #[test]
    fn scan_errors_end_the_wait() {
        let mut clock = FakeClock(Duration::ZERO);
        let err = wait_for_disks(
            || anyhow::bail!("sysfs unreadable"),
            |_| vec![],
            Duration::from_secs(60),
            &mut clock,
        )
        .unwrap_err();
        assert!(err.to_string().contains("sysfs unreadable"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
        assert!(parse_duration("3d").unwrap_err().contains("unknown unit"));
    }

    fn serial_disk(name: &str, serial: &str, lun: Option<u32>) -> Disk {
        let mut d = disk(name, lun, vec![]);
        d.serial = Some(serial.into());
        d
    }

    fn profile(disks: &str) -> crate::profile::Profile {
        let text = format!("version = 1\n[disks]\n{disks}\n[database]\nengine = \"none\"\n");
        crate::profile::parse(&text, std::path::Path::new("test.toml")).expect("valid profile")
    }

    #[test]
    fn expectation_from_a_lun_profile() {
        let e = DiskExpectation::from_profile(&profile(
            "platform = \"qemu\"\nluns = [0, 1]\nexpected-count = 2",
        ));
        assert_eq!((e.min_candidates, e.luns.clone()), (2, vec![0, 1]));
        let one = inv(vec![
            disk("sda", Some(0), vec![]),
            disk("sdc", Some(5), vec![]),
        ]);
        assert_eq!(
            e.missing(&one),
            vec![
                "LUN 1 is not attached".to_string(),
                "1 selected data candidate(s) present, 2 expected".to_string()
            ],
            "LUN 5 is not selected and does not count"
        );
        let both = inv(vec![
            disk("sda", Some(0), vec![]),
            disk("sdb", Some(1), vec![]),
        ]);
        assert!(e.missing(&both).is_empty());
    }

    #[test]
    fn expectation_from_a_serial_profile() {
        let e = DiskExpectation::from_profile(&profile(
            "select = \"match\"\nserial = [\"data*\"]\nexpected-count = 2",
        ));
        let i = inv(vec![
            serial_disk("sda", "data-a", None),
            serial_disk("sdb", "other", None),
        ]);
        assert_eq!(e.missing(&i).len(), 1);
        let i = inv(vec![
            serial_disk("sda", "data-a", None),
            serial_disk("sdb", "data-b", None),
        ]);
        assert!(e.missing(&i).is_empty());
        let all =
            DiskExpectation::from_profile(&profile("select = \"match\"\nserial = [\"data*\"]"));
        assert_eq!(
            all.min_candidates, 1,
            "expected-count = all waits for at least one disk"
        );
        assert!(!all.missing(&inv(vec![])).is_empty());
    }
}
