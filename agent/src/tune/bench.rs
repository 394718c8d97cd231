//! `dbhost bench`: O_DIRECT sequential 1 MiB and random 16 KiB reads and writes at a queue
//! depth (one thread per outstanding I/O, each doing pread/pwrite on a shared O_DIRECT fd with
//! a 4 KiB-aligned buffer), bounded in time and bytes per pattern; MB/s, IOPS and latency
//! percentiles from a log-linear histogram.
//!
//! Safety rules: on a block device only the read patterns run, unless `--destructive` is given
//! AND the device is blank (first 64 KiB and last 1 MiB all zero) AND it opens with O_EXCL (not
//! mounted, not held by md/dm); writes to a device are zeros, so a blank device stays blank. On a
//! directory every pattern runs inside a scratch file (O_DIRECT, fallocate'd and written once so
//! reads hit real blocks), removed afterwards. No unsafe code: std's positioned I/O and nix.

use crate::exit::Failure;
use crate::host::Host;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const ALIGN: usize = 4096;
const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    SeqRead,
    SeqWrite,
    RandRead,
    RandWrite,
}

impl Pattern {
    pub const ALL: [Pattern; 4] = [
        Pattern::SeqWrite,
        Pattern::SeqRead,
        Pattern::RandWrite,
        Pattern::RandRead,
    ];
    pub fn block_size(self) -> usize {
        match self {
            Pattern::SeqRead | Pattern::SeqWrite => 1024 * 1024,
            Pattern::RandRead | Pattern::RandWrite => 16 * 1024,
        }
    }
    pub fn is_write(self) -> bool {
        matches!(self, Pattern::SeqWrite | Pattern::RandWrite)
    }
    pub fn is_random(self) -> bool {
        matches!(self, Pattern::RandRead | Pattern::RandWrite)
    }
    pub fn name(self) -> &'static str {
        match self {
            Pattern::SeqRead => "seq-read",
            Pattern::SeqWrite => "seq-write",
            Pattern::RandRead => "rand-read",
            Pattern::RandWrite => "rand-write",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Time per pattern.
    pub seconds: f64,
    /// Outstanding I/Os (threads).
    pub queue_depth: u32,
    /// Scratch file size on a directory; the write region on a device.
    pub size: u64,
    /// Bytes per pattern at most.
    pub max_bytes: u64,
    pub destructive: bool,
    pub patterns: Vec<Pattern>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            seconds: 10.0,
            queue_depth: 16,
            size: 1024 * MIB,
            max_bytes: 16 * 1024 * MIB,
            destructive: false,
            patterns: Pattern::ALL.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PatternResult {
    pub pattern: Pattern,
    pub block_size: usize,
    pub queue_depth: u32,
    pub ops: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub mb_per_s: f64,
    pub iops: f64,
    pub lat_mean_us: f64,
    pub lat_p50_us: u64,
    pub lat_p99_us: u64,
    pub lat_max_us: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    pub pattern: Pattern,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    BlockDevice,
    ScratchFile,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub target: String,
    pub kind: TargetKind,
    /// Bytes the reads range over.
    pub read_region: u64,
    /// Bytes the writes range over (0 when no write ran).
    pub write_region: u64,
    pub seconds_per_pattern: f64,
    pub queue_depth: u32,
    pub results: Vec<PatternResult>,
    pub skipped: Vec<Skipped>,
    pub notes: Vec<String>,
}

// ------------------------------------------------------------------------- histogram

/// Log-linear latency histogram in microseconds: exact below 32 µs, then 32 sub-buckets per
/// power of two (≤ 3.2% relative error). Percentiles report the bucket's upper bound.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; 64 * SUB as usize],
            total: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros() as u64; // ≥ SUB_BITS
        let sub = (v >> (exp - SUB_BITS as u64)) & (SUB - 1);
        ((exp - SUB_BITS as u64 + 1) * SUB + sub) as usize
    }
    /// Largest value that falls into bucket `i`.
    fn upper(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let exp = i / SUB + SUB_BITS as u64 - 1;
        let sub = i % SUB;
        let shift = exp - SUB_BITS as u64;
        ((SUB + sub) << shift) + (1 << shift) - 1
    }
    pub fn record(&mut self, us: u64) {
        self.counts[Self::index(us)] += 1;
        self.total += 1;
        self.sum += us as u128;
        self.max = self.max.max(us);
    }
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }
    pub fn count(&self) -> u64 {
        self.total
    }
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }
    pub fn max(&self) -> u64 {
        self.max
    }
    /// The value at percentile `p` (0..=100): the upper bound of the bucket holding it, capped
    /// at the maximum seen.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }
}

// ------------------------------------------------------------------------- I/O helpers

/// A zeroed buffer of `len` bytes whose start is 4 KiB aligned (O_DIRECT), without unsafe:
/// over-allocate and slice at the aligned offset.
struct AlignedBuf {
    raw: Vec<u8>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize, fill: u8) -> Self {
        let mut raw = vec![fill; len + ALIGN];
        let off = raw.as_ptr().align_offset(ALIGN);
        assert!(off < ALIGN, "cannot align buffer");
        raw.truncate(off + len);
        AlignedBuf { raw, off, len }
    }
    fn as_slice(&self) -> &[u8] {
        &self.raw[self.off..self.off + self.len]
    }
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.off..self.off + self.len]
    }
}

fn pread(f: &File, buf: &mut [u8], off: u64, what: &Path) -> Result<()> {
    let n = f.read_at(buf, off).with_context(|| {
        format!(
            "pread of {} bytes at offset {off} on {}",
            buf.len(),
            what.display()
        )
    })?;
    if n != buf.len() {
        bail!(
            "short pread on {}: {n} of {} bytes at offset {off}",
            what.display(),
            buf.len()
        );
    }
    Ok(())
}

fn pwrite(f: &File, buf: &[u8], off: u64, what: &Path) -> Result<()> {
    let n = f.write_at(buf, off).with_context(|| {
        format!(
            "pwrite of {} bytes at offset {off} on {}",
            buf.len(),
            what.display()
        )
    })?;
    if n != buf.len() {
        bail!(
            "short pwrite on {}: {n} of {} bytes at offset {off}",
            what.display(),
            buf.len()
        );
    }
    Ok(())
}

fn open_direct(path: &Path, write: bool, excl: bool) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(write);
    let mut flags = libc::O_DIRECT;
    if excl {
        flags |= libc::O_EXCL;
    }
    o.custom_flags(flags);
    o.open(path).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::EINVAL) => " (O_DIRECT is not supported here)",
            Some(libc::EBUSY) => " (in use: mounted, or held by md/dm)",
            _ => "",
        };
        anyhow::Error::new(e).context(format!(
            "opening {} with O_DIRECT{}{hint}",
            path.display(),
            if write { " for writing" } else { "" }
        ))
    })
}

fn size_of(f: &mut File, path: &Path) -> Result<u64> {
    f.seek(SeekFrom::End(0))
        .with_context(|| format!("finding the size of {}", path.display()))
}

/// Offset of the first non-zero byte, if any.
pub fn first_nonzero(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b != 0)
}

/// Blank = the first 64 KiB and the last 1 MiB are all zero (where partition tables, filesystem
/// and md superblocks live). Returns the offset of the first non-zero byte found.
pub fn find_data(f: &File, size: u64, path: &Path) -> Result<Option<u64>> {
    // 512-byte granularity: the smallest logical block size; offsets and lengths below are
    // multiples of 4096 whenever the device size is (4Kn devices).
    let end = size / 512 * 512;
    let head = (64 * 1024).min(end);
    if head > 0 {
        let mut buf = AlignedBuf::new(head as usize, 0);
        pread(f, buf.as_mut(), 0, path)?;
        if let Some(i) = first_nonzero(buf.as_slice()) {
            return Ok(Some(i as u64));
        }
    }
    let tail_off = end.saturating_sub(MIB).max(head.min(end));
    let tail_len = end - tail_off;
    if tail_len > 0 {
        let mut buf = AlignedBuf::new(tail_len as usize, 0);
        pread(f, buf.as_mut(), tail_off, path)?;
        if let Some(i) = first_nonzero(buf.as_slice()) {
            return Ok(Some(tail_off + i as u64));
        }
    }
    Ok(None)
}

/// Which patterns may run on a block device: reads always; writes only when destructive and
/// blank. Pure, so the rule is tested without a device.
pub fn device_patterns(
    wanted: &[Pattern],
    destructive: bool,
    data_at: Option<u64>,
) -> (Vec<Pattern>, Vec<Skipped>) {
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for &p in wanted {
        if !p.is_write() {
            run.push(p);
        } else if !destructive {
            skipped.push(Skipped {
                pattern: p,
                reason:
                    "read-only on a block device; writes need --destructive on a blank device, \
                         or bench a directory on a mounted filesystem"
                        .into(),
            });
        } else if let Some(off) = data_at {
            skipped.push(Skipped {
                pattern: p,
                reason: format!("the device holds data (non-zero byte at offset {off})"),
            });
        } else {
            run.push(p);
        }
    }
    (run, skipped)
}

// ------------------------------------------------------------------------- running

/// xorshift64*: a small, fast PRNG for offsets (no crate needed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Run one pattern over `[0, region)` of an open O_DIRECT file.
pub fn run_pattern(
    f: &File,
    path: &Path,
    pattern: Pattern,
    region: u64,
    opts: &BenchOptions,
    fill: u8,
) -> Result<PatternResult> {
    let bs = pattern.block_size() as u64;
    let blocks = region / bs;
    if blocks == 0 {
        bail!(
            "{} is too small for {} ({} bytes < one {} KiB block)",
            path.display(),
            pattern.name(),
            region,
            bs / 1024
        );
    }
    let qd = opts.queue_depth.max(1);
    let next_seq = AtomicU64::new(0);
    let issued = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let first_err: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let merged = Mutex::new(Histogram::default());
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(opts.seconds.max(0.01));
    std::thread::scope(|s| {
        for t in 0..qd {
            let (next_seq, issued, stop, first_err, merged) =
                (&next_seq, &issued, &stop, &first_err, &merged);
            s.spawn(move || {
                let mut buf = AlignedBuf::new(bs as usize, fill);
                let mut hist = Histogram::default();
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1000_0000_01B3));
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if issued.fetch_add(bs, Ordering::Relaxed) + bs > opts.max_bytes {
                        break;
                    }
                    let block = if pattern.is_random() {
                        rng.next() % blocks
                    } else {
                        next_seq.fetch_add(1, Ordering::Relaxed) % blocks
                    };
                    let off = block * bs;
                    let t0 = Instant::now();
                    let r = if pattern.is_write() {
                        pwrite(f, buf.as_slice(), off, path)
                    } else {
                        pread(f, buf.as_mut(), off, path)
                    };
                    let us = t0.elapsed().as_micros() as u64;
                    if let Err(e) = r {
                        stop.store(true, Ordering::Relaxed);
                        first_err.lock().expect("bench error lock").get_or_insert(e);
                        break;
                    }
                    hist.record(us);
                }
                merged.lock().expect("bench histogram lock").merge(&hist);
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(e) = first_err.into_inner().expect("bench error lock") {
        return Err(e.context(format!("{} on {}", pattern.name(), path.display())));
    }
    if pattern.is_write() {
        f.sync_data()
            .with_context(|| format!("fdatasync of {} after {}", path.display(), pattern.name()))?;
    }
    let h = merged.into_inner().expect("bench histogram lock");
    let ops = h.count();
    let bytes = ops * bs;
    Ok(PatternResult {
        pattern,
        block_size: bs as usize,
        queue_depth: qd,
        ops,
        bytes,
        seconds: elapsed,
        mb_per_s: bytes as f64 / 1e6 / elapsed,
        iops: ops as f64 / elapsed,
        lat_mean_us: h.mean(),
        lat_p50_us: h.percentile(50.0),
        lat_p99_us: h.percentile(99.0),
        lat_max_us: h.max(),
    })
}

/// Kernel name of a block device node (resolving /dev/md/name, /dev/disk/by-id/... links).
fn kernel_name(path: &Path) -> Option<String> {
    fs::canonicalize(path)
        .ok()?
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
}

fn bench_device(host: &Host, path: &Path, opts: &BenchOptions) -> Result<BenchReport> {
    let name = kernel_name(path).unwrap_or_else(|| path.display().to_string());
    let mut ro = open_direct(path, false, false)?;
    let size = size_of(&mut ro, path)?;
    let mut notes = Vec::new();
    let data_at = if opts.destructive && opts.patterns.iter().any(|p| p.is_write()) {
        find_data(&ro, size, path)?
    } else {
        None
    };
    let (run, skipped) = device_patterns(&opts.patterns, opts.destructive, data_at);
    if opts.destructive && data_at.is_some() {
        return Err(Failure::Refused(format!(
            "refusing to write to {}: it holds data (non-zero byte at offset {}); \
             bench writes only to blank devices",
            path.display(),
            data_at.unwrap_or(0)
        ))
        .into());
    }
    let holders = fs::read_dir(host.sys(&format!("class/block/{name}/holders")))
        .map(|rd| rd.filter_map(|e| e.ok()).count())
        .unwrap_or(0);
    let wr = if run.iter().any(|p| p.is_write()) {
        if holders > 0 {
            return Err(Failure::Refused(format!(
                "refusing to write to {}: it is held by another device (see {})",
                path.display(),
                host.sys(&format!("class/block/{name}/holders")).display()
            ))
            .into());
        }
        notes.push(
            "writes on a device are zeros, so a blank device stays blank; the first write to \
             never-written cloud disk blocks can be slower than steady state"
                .into(),
        );
        Some(open_direct(path, true, true)?)
    } else {
        None
    };
    notes.push(
        "reads of never-written regions may be served without touching media on thin-provisioned \
         disks; caps (throttles) still apply"
            .into(),
    );
    let write_region = opts.size.min(size);
    let mut results = Vec::new();
    for p in &run {
        let (f, region) = if p.is_write() {
            (wr.as_ref().expect("opened for writing"), write_region)
        } else {
            (&ro, size)
        };
        results.push(run_pattern(f, path, *p, region, opts, 0)?);
    }
    Ok(BenchReport {
        target: path.display().to_string(),
        kind: TargetKind::BlockDevice,
        read_region: size,
        write_region: if wr.is_some() { write_region } else { 0 },
        seconds_per_pattern: opts.seconds,
        queue_depth: opts.queue_depth,
        results,
        skipped,
        notes,
    })
}

/// Removes the scratch file however the bench ends.
struct Scratch(PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn bench_dir(dir: &Path, opts: &BenchOptions) -> Result<BenchReport> {
    let size = opts.size / MIB * MIB;
    if size == 0 {
        bail!("--size must be at least 1 MiB");
    }
    let st =
        nix::sys::statvfs::statvfs(dir).with_context(|| format!("statvfs of {}", dir.display()))?;
    let avail = st.blocks_available() as u64 * st.fragment_size() as u64;
    if avail < size + size / 10 {
        return Err(Failure::Refused(format!(
            "{} has {} MiB free; the scratch file needs {} MiB (lower --size)",
            dir.display(),
            avail / MIB,
            size / MIB
        ))
        .into());
    }
    let path = dir.join(format!(".dbhost-bench.{}.tmp", std::process::id()));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::EINVAL) {
                " (this filesystem does not support O_DIRECT, e.g. an old tmpfs; bench a \
                 directory on the data filesystem)"
            } else {
                ""
            };
            anyhow::Error::new(e).context(format!(
                "creating scratch file {} with O_DIRECT{hint}",
                path.display()
            ))
        })?;
    let _guard = Scratch(path.clone());
    let mut notes = Vec::new();
    match nix::fcntl::fallocate(
        &f,
        nix::fcntl::FallocateFlags::empty(),
        0,
        size as libc::off_t,
    ) {
        Ok(()) => {}
        Err(nix::errno::Errno::EOPNOTSUPP) => {
            notes.push("fallocate not supported: the scratch file is written instead".into())
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "fallocate of {} MiB for {}",
                size / MIB,
                path.display()
            )))
        }
    }
    // Write every block once so reads hit real data, not unwritten extents.
    let prep = Instant::now();
    let buf = AlignedBuf::new(MIB as usize, 0x5a);
    for i in 0..size / MIB {
        pwrite(&f, buf.as_slice(), i * MIB, &path)?;
    }
    f.sync_data()
        .with_context(|| format!("fdatasync of {}", path.display()))?;
    notes.push(format!(
        "scratch file {} ({} MiB) prepared in {:.1} s and removed afterwards",
        path.display(),
        size / MIB,
        prep.elapsed().as_secs_f64()
    ));
    let mut results = Vec::new();
    for p in &opts.patterns {
        results.push(run_pattern(&f, &path, *p, size, opts, 0x5a)?);
    }
    Ok(BenchReport {
        target: dir.display().to_string(),
        kind: TargetKind::ScratchFile,
        read_region: size,
        write_region: size,
        seconds_per_pattern: opts.seconds,
        queue_depth: opts.queue_depth,
        results,
        skipped: vec![],
        notes,
    })
}

/// Benchmark a block device or a directory.
pub fn bench(host: &Host, target: &Path, opts: &BenchOptions) -> Result<BenchReport> {
    if opts.patterns.is_empty() {
        return Err(Failure::Usage("no pattern to run".into()).into());
    }
    let md = fs::metadata(target).with_context(|| format!("reading {}", target.display()))?;
    if md.file_type().is_block_device() {
        bench_device(host, target, opts)
    } else if md.is_dir() {
        bench_dir(target, opts)
    } else {
        Err(Failure::Usage(format!(
            "{} is neither a block device nor a directory",
            target.display()
        ))
        .into())
    }
}

/// One pattern of an array-versus-member comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub pattern: Pattern,
    /// "MB/s" for sequential patterns, "IOPS" for random ones.
    pub metric: &'static str,
    pub member: f64,
    pub array: f64,
    pub members: u32,
    /// array / (members × member): 1.0 = perfect scaling.
    pub ratio: f64,
}

/// Scaling of an array over one member, per pattern present in both reports: bandwidth for
/// sequential patterns, IOPS for random ones. The goal of issue 6 is ≥ 0.9.
pub fn ratios(member: &BenchReport, array: &BenchReport, members: u32) -> Vec<Ratio> {
    let mut out = Vec::new();
    for a in &array.results {
        let Some(m) = member.results.iter().find(|m| m.pattern == a.pattern) else {
            continue;
        };
        let (metric, mv, av) = if a.pattern.is_random() {
            ("IOPS", m.iops, a.iops)
        } else {
            ("MB/s", m.mb_per_s, a.mb_per_s)
        };
        let denom = mv * members as f64;
        out.push(Ratio {
            pattern: a.pattern,
            metric,
            member: mv,
            array: av,
            members,
            ratio: if denom > 0.0 { av / denom } else { 0.0 },
        });
    }
    out
}

/// "1G", "512M", "64KiB", "4096" → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: u64 = n.parse().map_err(|_| format!("`{s}` is not a size"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => 1024 * MIB,
        "t" | "tb" | "tib" => 1024 * 1024 * MIB,
        _ => return Err(format!("`{s}`: unknown unit (use K, M, G or T)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_percentiles() {
        for v in [0u64, 1, 31, 32, 33, 63, 64, 65, 100, 1000, 12345, 1 << 30] {
            let i = Histogram::index(v);
            assert!(Histogram::upper(i) >= v, "upper({i}) < {v}");
            if i > 0 {
                assert!(Histogram::upper(i - 1) < v, "bucket {i} for {v} not tight");
            }
            // ≤ 1/32 relative width.
            assert!(Histogram::upper(i) - v <= v / 32, "{v}");
        }
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile(50.0), 50);
        assert_eq!(h.percentile(99.0), 99);
        assert_eq!(h.percentile(100.0), 100);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
        let mut h2 = Histogram::default();
        h2.record(10_000);
        h.merge(&h2);
        assert_eq!(h.count(), 101);
        assert_eq!(h.percentile(100.0), 10_000);
        let p50 = h.percentile(50.0);
        assert_eq!(p50, 51);
        let mut big = Histogram::default();
        big.record(5000);
        // 5000 falls in [4992, 5119]: reported as the max seen, not the bucket bound.
        assert_eq!(big.percentile(50.0), 5000);
        assert_eq!(Histogram::default().percentile(99.0), 0);
    }

    fn result(p: Pattern, mb: f64, iops: f64) -> PatternResult {
        PatternResult {
            pattern: p,
            block_size: p.block_size(),
            queue_depth: 8,
            ops: 1,
            bytes: 1,
            seconds: 1.0,
            mb_per_s: mb,
            iops,
            lat_mean_us: 0.0,
            lat_p50_us: 0,
            lat_p99_us: 0,
            lat_max_us: 0,
        }
    }

    fn report(results: Vec<PatternResult>) -> BenchReport {
        BenchReport {
            target: "x".into(),
            kind: TargetKind::BlockDevice,
            read_region: 0,
            write_region: 0,
            seconds_per_pattern: 1.0,
            queue_depth: 8,
            results,
            skipped: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn ratios_per_pattern() {
        let member = report(vec![
            result(Pattern::SeqRead, 20.0, 19.0),
            result(Pattern::RandRead, 6.4, 400.0),
            result(Pattern::SeqWrite, 20.0, 19.0),
        ]);
        let array = report(vec![
            result(Pattern::SeqRead, 76.0, 72.0),
            result(Pattern::RandRead, 24.0, 1500.0),
            result(Pattern::RandWrite, 24.0, 1500.0),
        ]);
        let r = ratios(&member, &array, 4);
        assert_eq!(r.len(), 2, "rand-write has no member figure");
        assert_eq!(r[0].pattern, Pattern::SeqRead);
        assert_eq!(r[0].metric, "MB/s");
        assert!((r[0].ratio - 0.95).abs() < 1e-9);
        assert_eq!(r[1].metric, "IOPS");
        assert!((r[1].ratio - 0.9375).abs() < 1e-9);
        // JSON round trip: the comparison reads `dbhost bench --output json` files.
        let back: BenchReport =
            serde_json::from_str(&serde_json::to_string(&member).unwrap()).unwrap();
        assert_eq!(back.results.len(), 3);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("512M"), Ok(512 * MIB));
        assert_eq!(parse_size("1G"), Ok(1024 * MIB));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("G").is_err());
    }

    #[test]
    fn device_write_rules() {
        let all = Pattern::ALL;
        let (run, skipped) = device_patterns(&all, false, None);
        assert_eq!(run, vec![Pattern::SeqRead, Pattern::RandRead]);
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].reason.contains("--destructive"));
        let (run, skipped) = device_patterns(&all, true, Some(4096));
        assert_eq!(run, vec![Pattern::SeqRead, Pattern::RandRead]);
        assert!(skipped[0].reason.contains("offset 4096"));
        let (run, skipped) = device_patterns(&all, true, None);
        assert_eq!(run, all.to_vec());
        assert!(skipped.is_empty());
    }

    /// A directory on a filesystem that supports O_DIRECT (the crate dir is on ext4 here;
    /// /tmp may be tmpfs elsewhere).
    fn bench_dir_for_tests() -> tempfile::TempDir {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        tempfile::tempdir_in(base).unwrap()
    }

    #[test]
    fn blank_check_finds_signatures_at_both_ends() {
        let d = bench_dir_for_tests();
        let p = d.path().join("img");
        let size = 8 * MIB;
        fs::write(&p, vec![0u8; size as usize]).unwrap();
        let f = match open_direct(&p, false, false) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skipping: {e:#}");
                return;
            }
        };
        assert_eq!(find_data(&f, size, &p).unwrap(), None);
        // An md 1.2 superblock lives at 4 KiB.
        let raw = OpenOptions::new().write(true).open(&p).unwrap();
        raw.write_at(&[0xfc, 0x4e, 0x2b, 0xa9], 4096).unwrap();
        assert_eq!(find_data(&f, size, &p).unwrap(), Some(4096));
        raw.write_at(&[0; 4], 4096).unwrap();
        // A backup GPT lives in the last sectors.
        raw.write_at(b"EFI PART", size - 512).unwrap();
        assert_eq!(find_data(&f, size, &p).unwrap(), Some(size - 512));
        // The middle is not checked (a minimum: detection's full probe comes first).
        raw.write_at(&[0; 8], size - 512).unwrap();
        raw.write_at(b"data", 4 * MIB).unwrap();
        assert_eq!(find_data(&f, size, &p).unwrap(), None);
    }

    #[test]
    fn blank_check_on_odd_and_tiny_sizes() {
        let d = bench_dir_for_tests();
        for size in [512u64, 70 * 1024, MIB + 512, 3 * MIB + 1536] {
            let p = d.path().join(format!("img{size}"));
            let mut data = vec![0u8; size as usize];
            let f = {
                fs::write(&p, &data).unwrap();
                match open_direct(&p, false, false) {
                    Ok(f) => f,
                    Err(e) => {
                        eprintln!("skipping: {e:#}");
                        return;
                    }
                }
            };
            assert_eq!(find_data(&f, size, &p).unwrap(), None, "size {size}");
            // The very last sector is checked.
            data[size as usize - 1] = 1;
            fs::write(&p, &data).unwrap();
            assert_eq!(
                find_data(&f, size, &p).unwrap(),
                Some(size - 1),
                "size {size}"
            );
        }
    }

    /// Root-only tier (STYLE.md §10): a loop device over a sparse file. Runs when
    /// `DBHOST_LOOP_TESTS=1` and root, e.g.
    /// `DBHOST_LOOP_TESTS=1 cargo test -p dbhost loop_`.
    #[test]
    fn loop_bench_device_rules() {
        if std::env::var("DBHOST_LOOP_TESTS").as_deref() != Ok("1") {
            eprintln!("skipping: set DBHOST_LOOP_TESTS=1 (root) to run");
            return;
        }
        use crate::host::{CommandSpec, Exec, RealExec};
        let d = bench_dir_for_tests();
        let img = d.path().join("dev.img");
        fs::File::create(&img).unwrap().set_len(64 * MIB).unwrap();
        let out = RealExec
            .run(&CommandSpec::new("losetup").args([
                "--find",
                "--show",
                "--direct-io=on",
                &img.display().to_string(),
            ]))
            .unwrap();
        let dev = PathBuf::from(out.stdout.trim());
        struct Detach(PathBuf);
        impl Drop for Detach {
            fn drop(&mut self) {
                let _ = RealExec.run(
                    &CommandSpec::new("losetup")
                        .arg("-d")
                        .arg(self.0.display().to_string()),
                );
            }
        }
        let _detach = Detach(dev.clone());
        let host = Host::real();
        let mut opts = BenchOptions {
            seconds: 0.2,
            queue_depth: 2,
            size: 16 * MIB,
            max_bytes: 8 * MIB,
            ..Default::default()
        };
        let rep = bench(&host, &dev, &opts).unwrap();
        assert_eq!(rep.results.len(), 2);
        assert_eq!(rep.skipped.len(), 2);
        opts.destructive = true;
        let rep = bench(&host, &dev, &opts).unwrap();
        assert_eq!(rep.results.len(), 4);
        // Zeros were written: still blank, a second destructive run is allowed.
        assert!(bench(&host, &dev, &opts).is_ok());
        // A signature makes it refuse.
        let raw = OpenOptions::new().write(true).open(&img).unwrap();
        raw.write_at(b"XFSB", 0).unwrap();
        raw.sync_all().unwrap();
        let e = bench(&host, &dev, &opts).unwrap_err();
        assert_eq!(crate::exit::code_for(&e), crate::exit::REFUSED, "{e:#}");
        assert!(e.to_string().contains("offset 0"), "{e}");
    }

    #[test]
    fn bench_directory_runs_every_pattern_and_cleans_up() {
        let d = bench_dir_for_tests();
        let opts = BenchOptions {
            seconds: 0.2,
            queue_depth: 2,
            size: 4 * MIB,
            max_bytes: 8 * MIB,
            destructive: false,
            patterns: Pattern::ALL.to_vec(),
        };
        let host = Host::real();
        let rep = match bench(&host, d.path(), &opts) {
            Ok(r) => r,
            Err(e) if format!("{e:#}").contains("O_DIRECT") => {
                eprintln!("skipping: {e:#}");
                return;
            }
            Err(e) => panic!("{e:#}"),
        };
        assert_eq!(rep.kind, TargetKind::ScratchFile);
        assert_eq!(rep.results.len(), 4);
        for r in &rep.results {
            assert!(r.ops > 0, "{r:?}");
            assert_eq!(r.bytes, r.ops * r.block_size as u64);
            // The byte bound holds.
            assert!(r.bytes <= opts.max_bytes, "{r:?}");
            assert!(r.lat_p50_us <= r.lat_p99_us && r.lat_p99_us <= r.lat_max_us);
        }
        let names: Vec<&str> = rep.results.iter().map(|r| r.pattern.name()).collect();
        assert_eq!(
            names,
            vec!["seq-write", "seq-read", "rand-write", "rand-read"]
        );
        // Scratch file removed.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
        eprintln!("{}", serde_json::to_string(&rep).unwrap());
    }

    #[test]
    fn bench_rejects_regular_files_and_missing_paths() {
        let d = bench_dir_for_tests();
        let p = d.path().join("f");
        fs::write(&p, b"x").unwrap();
        let e = bench(&Host::real(), &p, &BenchOptions::default()).unwrap_err();
        assert!(e
            .to_string()
            .contains("neither a block device nor a directory"));
        let e = bench(
            &Host::real(),
            &d.path().join("nope"),
            &BenchOptions::default(),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("nope"));
    }

    #[test]
    fn too_big_scratch_is_refused() {
        let d = bench_dir_for_tests();
        let opts = BenchOptions {
            size: 1 << 60,
            ..Default::default()
        };
        let e = bench(&Host::real(), d.path(), &opts).unwrap_err();
        assert_eq!(crate::exit::code_for(&e), crate::exit::REFUSED, "{e:#}");
        assert!(e.to_string().contains("lower --size"));
    }
}
