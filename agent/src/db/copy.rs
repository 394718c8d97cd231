//! The relocation copier: a hot pass while the database runs, a delta pass during downtime, and
//! verification designed so the downtime window holds only the delta (GENERALIZE-DATADIR-TUNING.md
//! B9/B10).
//!
//! * [`pass1`] walks the source and copies every entry (regular files, directories, symlinks,
//!   fifos, device nodes; hard links stay hard links; sparse files stay sparse through
//!   `SEEK_DATA`/`SEEK_HOLE`), preserving owner, group, mode, atime/mtime with nanoseconds and
//!   every xattr (ACLs and `security.*` labels are xattrs). Each file's sha256 is computed from
//!   the bytes written while copying. A file whose status changed while it was copied, or that
//!   was modified too recently to trust a coarse kernel timestamp, is flagged `dirty` so pass 2
//!   copies it again. Files are written under a temporary name and renamed into place once
//!   complete, and the [`Manifest`] is checkpointed, so a re-run after a crash skips what is
//!   already there and converges.
//! * [`verify_pass1`] re-reads pass 1's target (page cache dropped first) against the recorded
//!   hashes while the database still runs; mismatches are flagged for pass 2.
//! * [`pass2`] (database stopped) copies only entries whose source status (size, mtime ns,
//!   ctime ns, inode, mode, owner) differs from what pass 1 recorded, plus dirty ones, and
//!   removes target entries that disappeared from the source. A changed plain file that pass 1
//!   copied is patched in place: compared block by block with the target, only differing
//!   64 KiB blocks rewritten, no hashing inside the downtime window (a database rewrites a few
//!   places of its big files — redo, undo, pages flushed at shutdown — not the whole files).
//! * [`verify_delta`] hashes only the files not verified yet (pass 2's copies), compares the
//!   patched ones with the source byte for byte (target read back from the device) — only the
//!   ranges pass 2 rewrote, since pass 2 compared the rest with the source as read from the
//!   device (syncfs first, cached pages dropped); whole files after an interrupted pass 2 —
//!   and checks
//!   the metadata of every entry on both sides (type, size, mode, owner, link target, mtime,
//!   xattrs, hard-link groups), which costs a few syscalls per entry.
//!
//! Sockets are skipped (a server recreates them). Source trees must stay on one filesystem.

use super::sys as xattr;
use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{lseek, Whence};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Manifest format version (bump on incompatible change; older manifests are discarded, which
/// only costs a full re-copy).
pub const MANIFEST_VERSION: u32 = 1;

/// Seconds since the epoch plus nanoseconds, as in `struct timespec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ts {
    pub s: i64,
    pub ns: i64,
}

impl Ts {
    fn spec(self) -> TimeSpec {
        TimeSpec::new(self.s, self.ns)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Fifo,
    CharDev,
    BlockDev,
}

/// One entry of the source tree as it was when copied, plus what the copy produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Ts,
    pub mtime: Ts,
    pub ctime: Ts,
    pub ino: u64,
    pub rdev: u64,
    /// sha256 (hex) of the bytes written to the target (regular files that are not hard-link
    /// followers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// For the 2nd..nth name of a hard-linked inode: the first name (relative path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardlink_to: Option<String>,
    /// Changed while (or just before) being copied: copy again in pass 2.
    #[serde(default)]
    pub dirty: bool,
    /// The target's bytes were re-read and matched `sha256`.
    #[serde(default)]
    pub verified: bool,
    /// Pass 2 patched this file in place: the byte ranges `(offset, length)` it rewrote.
    /// Everywhere else pass 2 read the target from the device and found it equal to the source,
    /// so [`verify_delta`] re-reads only these ranges. `None` on a patched file (a manifest from
    /// an older dbhost): compare the whole file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patched: Option<Vec<(u64, u64)>>,
}

/// What has been copied from `src` to `dst`: relative path ("" is the root) → entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub src: PathBuf,
    pub dst: PathBuf,
    pub entries: BTreeMap<String, Entry>,
    /// How many times pass 2 started on this manifest (saved before its first write). Above 1,
    /// an earlier pass 2 was interrupted and may have written blocks the current one found
    /// already equal (and so did not record): verification then compares whole files.
    #[serde(default)]
    pub pass2_runs: u32,
}

impl Manifest {
    pub fn new(src: &Path, dst: &Path) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            entries: BTreeMap::new(),
            pass2_runs: 0,
        }
    }

    /// Load a checkpoint; a missing, unreadable, foreign (other src/dst) or old-version file
    /// gives a fresh manifest (which only means more copying, never less checking).
    pub fn load_or_new(path: &Path, src: &Path, dst: &Path) -> Self {
        fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
            .filter(|m| m.version == MANIFEST_VERSION && m.src == src && m.dst == dst)
            .unwrap_or_else(|| Manifest::new(src, dst))
    }

    /// Write atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let data = serde_json::to_vec(self).context("serializing the copy manifest")?;
        crate::host::atomic_write(path, &data, 0o600)
            .with_context(|| format!("writing copy manifest {}", path.display()))?;
        Ok(())
    }

    /// Relative paths flagged for pass 2.
    pub fn dirty(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, e)| e.dirty)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Scan,
    Copy,
    Verify,
    Delta,
    VerifyDelta,
}

/// Progress report for bars: bytes done out of total in the current phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
}

/// Tuning of a copy run.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Read/hash/write buffer.
    pub buf_size: usize,
    /// A file whose ctime is within this window of the moment it was copied is flagged dirty:
    /// kernel timestamps are jiffy-coarse, so a write in the same tick would not be visible.
    pub hot_window: Duration,
    /// How often pass 1 calls its checkpoint callback.
    pub checkpoint_every: Duration,
    /// Extra room required on the target beyond the source's allocated bytes. `None`: 10 % of
    /// the source, at least 64 MiB.
    pub margin_bytes: Option<u64>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            buf_size: 4 << 20,
            hot_window: Duration::from_secs(2),
            checkpoint_every: Duration::from_secs(5),
            margin_bytes: None,
        }
    }
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PassReport {
    pub entries: usize,
    /// Entries (re)created or rewritten in this pass.
    pub copied: Vec<String>,
    pub copied_bytes: u64,
    /// Entries already up to date.
    pub unchanged: usize,
    /// Target entries removed because they vanished from the source (pass 2).
    pub removed: Vec<String>,
    /// Entries flagged for pass 2 because they changed while being copied.
    pub dirty: Vec<String>,
    /// Source entries that disappeared while a hot pass was copying them.
    pub vanished: Vec<String>,
}

impl PassReport {
    pub fn changed(&self) -> bool {
        !self.copied.is_empty() || !self.removed.is_empty()
    }
}

/// One disagreement found by verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub path: String,
    pub what: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub hashed_files: usize,
    pub hashed_bytes: u64,
    /// Files patched in place by pass 2 (no hash recorded): verified by comparing the target,
    /// read back from the device, byte for byte with the source.
    pub compared_files: usize,
    pub compared_bytes: u64,
    pub checked_entries: usize,
    pub mismatches: Vec<Mismatch>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }
    /// Fail with the first mismatches listed.
    pub fn ensure_ok(&self, what: &str) -> Result<()> {
        if self.ok() {
            return Ok(());
        }
        let list: Vec<String> = self
            .mismatches
            .iter()
            .take(10)
            .map(|m| format!("{}: {}", m.path, m.what))
            .collect();
        bail!(
            "{what}: {} mismatch(es): {}{}",
            self.mismatches.len(),
            list.join("; "),
            if self.mismatches.len() > 10 {
                "; …"
            } else {
                ""
            }
        )
    }
}

/// The target filesystem lacks room: refuse before touching anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not enough room: copying {src} needs {needed} bytes on the filesystem of {dst} \
     ({src_allocated} allocated in the source + {margin} margin - {dst_existing} already copied), \
     but only {available} bytes are available there; use larger disks or free space"
)]
pub struct NoRoom {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub needed: u64,
    pub available: u64,
    pub src_allocated: u64,
    pub margin: u64,
    pub dst_existing: u64,
}

/// Result of a successful room check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub needed: u64,
    pub available: u64,
    pub src_allocated: u64,
    pub src_bytes: u64,
    pub files: usize,
}

// ---------------------------------------------------------------------------------------------
// scanning

struct Scanned {
    rel: String,
    path: PathBuf,
    meta: Metadata,
}

fn rel_join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

fn kind_of(m: &Metadata) -> Option<Kind> {
    let t = m.file_type();
    if t.is_dir() {
        Some(Kind::Dir)
    } else if t.is_file() {
        Some(Kind::File)
    } else if t.is_symlink() {
        Some(Kind::Symlink)
    } else if t.is_fifo() {
        Some(Kind::Fifo)
    } else if t.is_char_device() {
        Some(Kind::CharDev)
    } else if t.is_block_device() {
        Some(Kind::BlockDev)
    } else {
        None // socket
    }
}

/// Pre-order walk, names sorted, sockets skipped, one filesystem only. Entries that vanish
/// during the walk (the database is running) are skipped; pass 2 catches up.
/// The regular files under `root` (relative paths), as the copier walks them.
pub fn regular_files(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(scan(root)?
        .into_iter()
        .filter(|s| s.meta.is_file())
        .map(|s| PathBuf::from(s.rel))
        .collect())
}

fn scan(root: &Path) -> Result<Vec<Scanned>> {
    let meta = fs::symlink_metadata(root).with_context(|| format!("reading {}", root.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let dev = meta.dev();
    let mut out = vec![Scanned {
        rel: String::new(),
        path: root.to_path_buf(),
        meta,
    }];
    walk(root, "", dev, &mut out, root)?;
    Ok(out)
}

fn walk(dir: &Path, rel: &str, dev: u64, out: &mut Vec<Scanned>, root: &Path) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !rel.is_empty() => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut children = Vec::new();
    for de in rd {
        let de = de.with_context(|| format!("listing {}", dir.display()))?;
        let name = de.file_name();
        let name = name.to_str().ok_or_else(|| {
            anyhow!(
                "{}: file name is not UTF-8; rename it before relocating",
                de.path().display()
            )
        })?;
        let path = de.path();
        let m = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if kind_of(&m).is_none() {
            continue;
        }
        if m.is_dir() && m.dev() != dev {
            bail!(
                "{} is a mount point inside {}; relocation refuses to cross filesystems",
                path.display(),
                root.display()
            );
        }
        children.push(Scanned {
            rel: rel_join(rel, name),
            path,
            meta: m,
        });
    }
    children.sort_by(|a, b| a.rel.cmp(&b.rel));
    for c in children {
        let is_dir = c.meta.is_dir();
        let (p, r) = (c.path.clone(), c.rel.clone());
        out.push(c);
        if is_dir {
            walk(&p, &r, dev, out, root)?;
        }
    }
    Ok(())
}

fn ts(s: i64, ns: i64) -> Ts {
    Ts { s, ns }
}

fn entry_from(m: &Metadata) -> Entry {
    Entry {
        kind: kind_of(m).unwrap_or(Kind::File),
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        size: m.size(),
        atime: ts(m.atime(), m.atime_nsec()),
        mtime: ts(m.mtime(), m.mtime_nsec()),
        ctime: ts(m.ctime(), m.ctime_nsec()),
        ino: m.ino(),
        rdev: m.rdev(),
        sha256: None,
        link: None,
        hardlink_to: None,
        dirty: false,
        verified: false,
        patched: None,
    }
}

/// The source status pass 2 compares against (atime excluded: reading changes it).
fn same_source(e: &Entry, m: &Metadata) -> bool {
    let n = entry_from(m);
    e.kind == n.kind
        && e.mode == n.mode
        && e.uid == n.uid
        && e.gid == n.gid
        && e.size == n.size
        && e.mtime == n.mtime
        && e.ctime == n.ctime
        && e.ino == n.ino
        && e.rdev == n.rdev
}

// ---------------------------------------------------------------------------------------------
// room

/// Bytes allocated by a tree (hard-linked inodes counted once).
fn allocated(entries: &[Scanned]) -> (u64, u64, usize) {
    let mut seen = BTreeSet::new();
    let (mut alloc, mut bytes, mut files) = (0u64, 0u64, 0usize);
    for s in entries {
        if s.meta.nlink() > 1 && !s.meta.is_dir() && !seen.insert(s.meta.ino()) {
            continue;
        }
        alloc += s.meta.blocks() * 512;
        if s.meta.is_file() {
            bytes += s.meta.size();
            files += 1;
        }
    }
    (alloc, bytes, files)
}

fn nearest_existing(p: &Path) -> PathBuf {
    let mut cur = p.to_path_buf();
    while !cur.exists() {
        match cur.parent() {
            Some(par) if par != cur => cur = par.to_path_buf(),
            _ => break,
        }
    }
    cur
}

/// The room rule: needed = allocated blocks of the source + margin − what the target already
/// holds (a resumed copy). Pure, for tests.
pub fn room_needed(src_allocated: u64, margin: Option<u64>, dst_existing: u64) -> (u64, u64) {
    let margin = margin.unwrap_or_else(|| (src_allocated / 10).max(64 << 20));
    (
        src_allocated
            .saturating_add(margin)
            .saturating_sub(dst_existing),
        margin,
    )
}

/// Refuse (with [`NoRoom`]) unless the filesystem holding `dst` can take `src`.
/// Allocated bytes (hard links once), apparent bytes and file count of the tree at `src`.
pub fn source_usage(src: &Path) -> Result<(u64, u64, usize)> {
    Ok(allocated(&scan(src)?))
}

pub fn check_room(src: &Path, dst: &Path, opts: &CopyOptions) -> Result<Room> {
    let entries = scan(src)?;
    let (src_alloc, src_bytes, files) = allocated(&entries);
    let dst_existing = if dst.is_dir() {
        allocated(&scan(dst)?).0
    } else {
        0
    };
    let probe = nearest_existing(dst);
    let st = nix::sys::statvfs::statvfs(&probe)
        .with_context(|| format!("statvfs {}", probe.display()))?;
    let available = st.blocks_available() as u64 * st.fragment_size() as u64;
    let (needed, margin) = room_needed(src_alloc, opts.margin_bytes, dst_existing);
    if needed > available {
        return Err(NoRoom {
            src: src.to_path_buf(),
            dst: dst.to_path_buf(),
            needed,
            available,
            src_allocated: src_alloc,
            margin,
            dst_existing,
        }
        .into());
    }
    Ok(Room {
        needed,
        available,
        src_allocated: src_alloc,
        src_bytes,
        files,
    })
}

// ---------------------------------------------------------------------------------------------
// file data

fn open_src(p: &Path) -> io::Result<File> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME | libc::O_CLOEXEC)
        .open(p)
    {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(p),
        r => r,
    }
}

/// Next (data_start, data_end) at or after `off`, below `size`; `None` when only a hole is
/// left. Filesystems without SEEK_DATA get one extent covering the rest.
fn next_data(f: &File, off: u64, size: u64) -> io::Result<Option<(u64, u64)>> {
    if off >= size {
        return Ok(None);
    }
    let data = match lseek(f, off as i64, Whence::SeekData) {
        Ok(d) => d as u64,
        Err(nix::errno::Errno::ENXIO) => return Ok(None),
        Err(nix::errno::Errno::EINVAL) => return Ok(Some((off, size))),
        Err(e) => return Err(e.into()),
    };
    if data >= size {
        return Ok(None);
    }
    let hole = match lseek(f, data as i64, Whence::SeekHole) {
        Ok(h) => (h as u64).min(size),
        Err(nix::errno::Errno::ENXIO) => size,
        Err(e) => return Err(e.into()),
    };
    Ok(Some((data, hole.max(data))))
}

fn hash_zeros(h: &mut Sha256, mut n: u64, zeros: &[u8]) {
    while n > 0 {
        let k = n.min(zeros.len() as u64) as usize;
        h.update(&zeros[..k]);
        n -= k as u64;
    }
}

/// A piece of a file's logical content, in order.
enum Chunk {
    /// A hole of this many bytes (reads as zeros; not written).
    Hole(u64),
    /// `len` bytes of data at `off` in `buf`.
    Data { off: u64, buf: Vec<u8>, len: usize },
    /// The file ended (early, if it was truncated under us) at this size.
    End(u64),
}

/// Walk `src` extent by extent (holes via SEEK_DATA/SEEK_HOLE), reading data into buffers from
/// `bufs`; `emit` returns false to stop.
fn produce(
    src: &File,
    size: u64,
    bufs: &mut dyn FnMut() -> Option<Vec<u8>>,
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> io::Result<()> {
    let mut off = 0u64;
    let mut end = size;
    'outer: while off < end {
        let Some((data, hole)) = next_data(src, off, end)? else {
            break;
        };
        if data > off && !emit(Chunk::Hole(data - off)) {
            return Ok(());
        }
        let mut pos = data;
        while pos < hole {
            let Some(mut buf) = bufs() else {
                return Ok(());
            };
            let want = ((hole - pos) as usize).min(buf.len());
            let n = src.read_at(&mut buf[..want], pos)?;
            if n == 0 {
                end = pos; // truncated under us: the entry will be dirty
                off = pos;
                break 'outer;
            }
            if !emit(Chunk::Data {
                off: pos,
                buf,
                len: n,
            }) {
                return Ok(());
            }
            pos += n as u64;
        }
        off = hole;
    }
    if off < end && !emit(Chunk::Hole(end - off)) {
        return Ok(());
    }
    emit(Chunk::End(end));
    Ok(())
}

/// Consume chunks: hash (unless `h` is `None`: a hashing thread does it), write data at the same
/// offsets into `dst` (when given), set its length.
struct Sink<'a> {
    h: Option<Sha256>,
    dst: Option<&'a File>,
    zeros: &'a [u8],
    end: Option<u64>,
}

impl Sink<'_> {
    fn take(&mut self, c: &Chunk, tick: &mut dyn FnMut(u64)) -> io::Result<()> {
        match c {
            Chunk::Hole(n) => {
                if let Some(h) = &mut self.h {
                    hash_zeros(h, *n, self.zeros);
                }
                tick(*n);
            }
            Chunk::Data { off, buf, len } => {
                if let Some(h) = &mut self.h {
                    h.update(&buf[..*len]);
                }
                if let Some(d) = self.dst {
                    d.write_all_at(&buf[..*len], *off)?;
                }
                tick(*len as u64);
            }
            Chunk::End(e) => {
                if let Some(d) = self.dst {
                    d.set_len(*e)?;
                }
                self.end = Some(*e);
            }
        }
        Ok(())
    }
    fn finish(self) -> (String, u64) {
        let h = self.h.unwrap_or_default();
        (hex::encode(h.finalize()), self.end.unwrap_or(0))
    }
}

/// Read `src` extent by extent (holes skipped), hash the logical content, write data at the
/// same offsets into `dst` (when given) and set its length. Returns (sha256 hex, bytes).
/// Files larger than a few buffers go through three threads — read, write, hash — so device
/// reads, device writes and SHA-256 overlap (four buffers in flight): the hash costs no copy time
/// as long as it keeps up with the disks.
fn stream(
    src: &File,
    size: u64,
    dst: Option<&File>,
    buf: &mut Vec<u8>,
    zeros: &[u8],
    tick: &mut dyn FnMut(u64),
) -> io::Result<(String, u64)> {
    if buf.is_empty() {
        buf.resize(1 << 20, 0);
    }
    let mut sink = Sink {
        h: Some(Sha256::new()),
        dst,
        zeros,
        end: None,
    };
    if size <= 4 * buf.len() as u64 {
        // Small file: one reused buffer, no thread.
        let spare = std::cell::RefCell::new(Some(std::mem::take(buf)));
        let mut err = None;
        let r = produce(src, size, &mut || spare.borrow_mut().take(), &mut |c| {
            let r = sink.take(&c, tick);
            if let Chunk::Data { buf: b, .. } = c {
                *spare.borrow_mut() = Some(b);
            }
            match r {
                Ok(()) => true,
                Err(e) => {
                    err = Some(e);
                    false
                }
            }
        });
        if let Some(b) = spare.into_inner() {
            *buf = b;
        }
        r?;
        if let Some(e) = err {
            return Err(e);
        }
        return Ok(sink.finish());
    }
    use std::sync::mpsc::{channel, sync_channel};
    // reader --tx--> this thread (writes) --htx--> hasher --back_tx--> reader (free buffers)
    let (tx, rx) = sync_channel::<Chunk>(2);
    let (htx, hrx) = sync_channel::<Chunk>(2);
    let (back_tx, back_rx) = channel::<Vec<u8>>();
    for _ in 0..4 {
        let _ = back_tx.send(vec![0u8; buf.len()]);
    }
    sink.h = None;
    std::thread::scope(|sc| {
        let reader = sc.spawn(move || {
            produce(src, size, &mut || back_rx.recv().ok(), &mut |c| {
                tx.send(c).is_ok()
            })
        });
        let hasher = sc.spawn(move || {
            let mut h = Sha256::new();
            for c in hrx.iter() {
                match c {
                    Chunk::Hole(n) => hash_zeros(&mut h, n, zeros),
                    Chunk::Data { buf, len, .. } => {
                        h.update(&buf[..len]);
                        let _ = back_tx.send(buf);
                    }
                    Chunk::End(_) => {}
                }
            }
            hex::encode(h.finalize())
        });
        let mut res = Ok(());
        for c in rx.iter() {
            if let Err(e) = sink.take(&c, tick) {
                res = Err(e);
                break;
            }
            if htx.send(c).is_err() {
                res = Err(io::Error::other("hashing thread stopped"));
                break;
            }
        }
        drop(rx);
        drop(htx);
        let hash = hasher
            .join()
            .map_err(|_| io::Error::other("hashing thread panicked"));
        let r = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("reader thread panicked")));
        res?;
        r?;
        let (_, end) = sink.finish();
        Ok((hash?, end))
    })
}

/// Hash a file as it is on disk (page cache dropped first so the bytes come from the device).
pub fn hash_file(
    p: &Path,
    buf: &mut Vec<u8>,
    tick: &mut dyn FnMut(u64),
) -> io::Result<(String, u64)> {
    let f = open_src(p)?;
    let size = f.metadata()?.len();
    let _ = posix_fadvise(&f, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    let _ = posix_fadvise(&f, 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
    let zeros = vec![0u8; buf.len().min(1 << 20)];
    stream(&f, size, None, buf, &zeros, tick)
}

// ---------------------------------------------------------------------------------------------
// metadata

fn xattrs_of(p: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = BTreeMap::new();
    for n in xattr::list(p).with_context(|| format!("listing xattrs of {}", p.display()))? {
        match xattr::get(p, &n) {
            Ok(v) => {
                out.insert(n.as_bytes().to_vec(), v);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading xattr {} of {}", n.to_string_lossy(), p.display())
                })
            }
        }
    }
    Ok(out)
}

/// Make the xattrs of `dst` equal to those of `src` (extra ones removed, e.g. ACLs inherited
/// from a default ACL of the target directory).
fn copy_xattrs(src: &Path, dst: &Path) -> Result<()> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let want = xattrs_of(src)?;
    let have = xattrs_of(dst)?;
    for k in have.keys() {
        if !want.contains_key(k) {
            xattr::remove(dst, OsStr::from_bytes(k)).with_context(|| {
                format!(
                    "removing xattr {} of {}",
                    String::from_utf8_lossy(k),
                    dst.display()
                )
            })?;
        }
    }
    for (k, v) in &want {
        if have.get(k) != Some(v) {
            xattr::set(dst, OsStr::from_bytes(k), v).with_context(|| {
                format!(
                    "setting xattr {} on {} (copied from {})",
                    String::from_utf8_lossy(k),
                    dst.display(),
                    src.display()
                )
            })?;
        }
    }
    Ok(())
}

/// chown, chmod, xattrs, times — in that order (chown clears setuid bits and capabilities).
fn apply_meta(src: &Path, dst: &Path, e: &Entry) -> Result<()> {
    std::os::unix::fs::lchown(dst, Some(e.uid), Some(e.gid))
        .with_context(|| format!("chown {}:{} {}", e.uid, e.gid, dst.display()))?;
    if e.kind != Kind::Symlink {
        fs::set_permissions(dst, fs::Permissions::from_mode(e.mode))
            .with_context(|| format!("chmod {:o} {}", e.mode, dst.display()))?;
    }
    copy_xattrs(src, dst)?;
    utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &e.atime.spec(),
        &e.mtime.spec(),
        UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("setting times of {}", dst.display()))?;
    Ok(())
}

fn remove_any(p: &Path) -> Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(p).with_context(|| format!("removing {}", p.display()))
        }
        Ok(_) => fs::remove_file(p).with_context(|| format!("removing {}", p.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn tmp_name(dst: &Path, ino: u64) -> PathBuf {
    dst.with_file_name(format!(".dbhost-part.{ino}"))
}

// ---------------------------------------------------------------------------------------------
// the copy passes

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Database running: changes during the copy are expected and flagged.
    Hot,
    /// Database stopped: a change during the copy is an error.
    Cold,
}

struct Ctx<'a> {
    dst: &'a Path,
    opts: &'a CopyOptions,
    buf: Vec<u8>,
    zeros: Vec<u8>,
    done: u64,
    total: u64,
    phase: Phase,
    progress: &'a mut dyn FnMut(Progress),
}

impl Ctx<'_> {
    fn tick(&mut self, n: u64) {
        self.done += n;
        (self.progress)(Progress {
            phase: self.phase,
            done: self.done,
            total: self.total,
        });
    }
}

/// Is the target copy of this file (per the manifest) still good for this source state?
fn file_up_to_date(old: Option<&Entry>, m: &Metadata, dst: &Path) -> bool {
    let Some(old) = old else { return false };
    if old.dirty || old.sha256.is_none() || old.hardlink_to.is_some() || !same_source(old, m) {
        return false;
    }
    match fs::symlink_metadata(dst) {
        Ok(d) => {
            d.is_file()
                && d.size() == old.size
                && d.mtime() == old.mtime.s
                && d.mtime_nsec() == old.mtime.ns
                && d.mode() & 0o7777 == old.mode
                && d.uid() == old.uid
                && d.gid() == old.gid
        }
        Err(_) => false,
    }
}

fn copy_regular(cx: &mut Ctx, s: &Scanned, dpath: &Path, mode: Mode) -> Result<Entry> {
    let started = SystemTime::now();
    let f = open_src(&s.path).with_context(|| format!("opening {}", s.path.display()))?;
    let pre = f
        .metadata()
        .with_context(|| format!("reading {}", s.path.display()))?;
    let _ = posix_fadvise(&f, 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
    let mut e = entry_from(&pre);
    let tmp = tmp_name(dpath, pre.ino());
    remove_any(&tmp)?;
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut buf = std::mem::take(&mut cx.buf);
    let zeros = std::mem::take(&mut cx.zeros);
    let res = {
        let mut tick = |n| cx.tick(n);
        stream(&f, pre.size(), Some(&out), &mut buf, &zeros, &mut tick)
    };
    cx.buf = buf;
    cx.zeros = zeros;
    let (sha, len) =
        res.with_context(|| format!("copying {} to {}", s.path.display(), tmp.display()))?;
    let post = f
        .metadata()
        .with_context(|| format!("reading {}", s.path.display()))?;
    e.sha256 = Some(sha);
    e.size = len;
    let changed = !same_source(&e, &post) || len != pre.size();
    if changed && mode == Mode::Cold {
        let _ = fs::remove_file(&tmp);
        bail!(
            "{} changed while being copied during downtime; is the database really stopped?",
            s.path.display()
        );
    }
    let recent = {
        let c =
            UNIX_EPOCH + Duration::new(post.ctime().max(0) as u64, post.ctime_nsec().max(0) as u32);
        c + cx.opts.hot_window >= started
    };
    e.dirty = mode == Mode::Hot && (changed || recent);
    // Metadata is applied to the complete file before it gets its final name.
    apply_meta(&s.path, &tmp, &e)?;
    drop(out);
    if fs::symlink_metadata(dpath)
        .map(|m| m.is_dir())
        .unwrap_or(false)
    {
        remove_any(dpath)?;
    }
    fs::rename(&tmp, dpath)
        .with_context(|| format!("renaming {} to {}", tmp.display(), dpath.display()))?;
    Ok(e)
}

/// Pass 2 may patch the target in place instead of rewriting it: a plain (one link, not
/// sparse) file that pass 1 copied and that is still a plain file in the target. Database files
/// change in a few places between pass 1 and the stop (redo log, undo, pages flushed at
/// shutdown), and a whole-file copy would move all of them again inside the downtime window.
fn patchable(prev: Option<&Entry>, m: &Metadata, dst: &Path) -> bool {
    let plain = |x: &Metadata| x.is_file() && x.nlink() == 1 && x.blocks() * 512 >= x.size();
    prev.is_some_and(|p| p.kind == Kind::File && p.hardlink_to.is_none())
        && plain(m)
        && fs::symlink_metadata(dst).is_ok_and(|d| plain(&d))
}

/// Unit of comparison (and of writing) when patching: a differing block is rewritten whole.
const PATCH_BLOCK: usize = 64 << 10;

/// Read up to `buf.len()` bytes at `off` (short only at end of file).
fn read_full_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Pass 2 (database stopped): make the target equal to the source by rewriting only the blocks
/// that differ, comparing against what the target actually holds (not against pass 1's record),
/// so a re-run after a crash in the middle converges. No hash is computed: the entry is left
/// unverified with no sha256, and [`verify_delta`] compares it with the source byte for byte
/// after reading it back from the device. Returns the entry and the bytes written.
fn patch_regular(
    cx: &mut Ctx,
    s: &Scanned,
    dpath: &Path,
    prev: Option<&Entry>,
) -> Result<(Entry, u64)> {
    let f = open_src(&s.path).with_context(|| format!("opening {}", s.path.display()))?;
    let pre = f
        .metadata()
        .with_context(|| format!("reading {}", s.path.display()))?;
    let _ = posix_fadvise(&f, 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(dpath)
        .with_context(|| format!("opening {} to patch it", dpath.display()))?;
    // The comparison reads the target from the device, not from cached pages (the pass began
    // with a syncfs, so none are dirty): a block found equal here is known good on the disk,
    // and verification only has to read back the blocks this pass rewrites.
    let _ = posix_fadvise(&out, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    let _ = posix_fadvise(&out, 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
    let mut a = std::mem::take(&mut cx.buf);
    let mut b = vec![0u8; a.len()];
    let size = pre.size();
    let (mut off, mut written) = (0u64, 0u64);
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let res: io::Result<()> = (|| {
        while off < size {
            let want = ((size - off) as usize).min(a.len());
            let n = read_full_at(&f, &mut a[..want], off)?;
            if n == 0 {
                break; // truncated under us: caught by the status check below
            }
            let m = read_full_at(&out, &mut b[..n], off)?;
            let mut i = 0;
            while i < n {
                let j = (i + PATCH_BLOCK).min(n);
                if j > m || a[i..j] != b[i..j] {
                    let at = off + i as u64;
                    out.write_all_at(&a[i..j], at)?;
                    written += (j - i) as u64;
                    match ranges.last_mut() {
                        Some((o, l)) if *o + *l == at => *l += (j - i) as u64,
                        _ => ranges.push((at, (j - i) as u64)),
                    }
                }
                i = j;
            }
            cx.tick(n as u64);
            off += n as u64;
        }
        if out.metadata()?.len() != off {
            out.set_len(off)?;
        }
        Ok(())
    })();
    cx.buf = a;
    res.with_context(|| format!("patching {} from {}", dpath.display(), s.path.display()))?;
    let post = f
        .metadata()
        .with_context(|| format!("reading {}", s.path.display()))?;
    let mut e = entry_from(&pre);
    if !same_source(&e, &post) || off != size {
        bail!(
            "{} changed while being copied during downtime; is the database really stopped?",
            s.path.display()
        );
    }
    e.size = off;
    // The rest of the target was read from the device above and found equal to the source:
    // only the rewritten ranges need reading back (plus an earlier patch's ranges, kept).
    e.patched = Some(match prev.and_then(|p| p.patched.as_ref()) {
        Some(old) if prev.is_some_and(|p| p.sha256.is_none()) => merge_ranges(old, &ranges),
        _ => ranges,
    });
    apply_meta(&s.path, dpath, &e)?;
    Ok((e, written))
}

/// The union of two sorted range lists, as sorted, non-overlapping, non-adjacent ranges.
fn merge_ranges(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut all: Vec<(u64, u64)> = a.iter().chain(b).copied().filter(|r| r.1 > 0).collect();
    all.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(all.len());
    for (o, l) in all {
        match out.last_mut() {
            Some((po, pl)) if o <= *po + *pl => *pl = (*pl).max(o + l - *po),
            _ => out.push((o, l)),
        }
    }
    out
}

/// Compare `dst` (page cache dropped first, so the bytes come from the device) with `src`, byte
/// for byte. `Ok(None)`: equal; `Ok(Some(what))`: the first difference.
fn compare_file(
    src: &Path,
    dst: &Path,
    buf: &mut Vec<u8>,
    tick: &mut dyn FnMut(u64),
) -> io::Result<Option<String>> {
    compare_ranges(src, dst, &[(0, u64::MAX)], buf, tick)
}

/// Like [`compare_file`], over the given byte ranges only (e.g. the blocks pass 2 rewrote): the
/// sizes must agree and each range, dropped from the page cache first, must equal the source.
fn compare_ranges(
    src: &Path,
    dst: &Path,
    ranges: &[(u64, u64)],
    buf: &mut Vec<u8>,
    tick: &mut dyn FnMut(u64),
) -> io::Result<Option<String>> {
    let a = open_src(src)?;
    let b = open_src(dst)?;
    let (la, lb) = (a.metadata()?.len(), b.metadata()?.len());
    if la != lb {
        return Ok(Some(format!("size {lb} differs from the source's {la}")));
    }
    let _ = posix_fadvise(&a, 0, 0, PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
    if buf.is_empty() {
        buf.resize(1 << 20, 0);
    }
    let mut other = vec![0u8; buf.len()];
    for &(start, len) in ranges {
        let end = start.saturating_add(len).min(la);
        if end <= start {
            continue;
        }
        let _ = posix_fadvise(
            &b,
            start as i64,
            (end - start) as i64,
            PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        );
        let _ = posix_fadvise(
            &b,
            start as i64,
            (end - start) as i64,
            PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL,
        );
        let mut off = start;
        while off < end {
            let want = ((end - off) as usize).min(buf.len());
            let n = read_full_at(&a, &mut buf[..want], off)?;
            let m = read_full_at(&b, &mut other[..want], off)?;
            if n != want || m != want {
                return Ok(Some(format!("short read at offset {off}")));
            }
            if buf[..n] != other[..n] {
                let i = (0..n).find(|&i| buf[i] != other[i]).unwrap_or(0);
                return Ok(Some(format!(
                    "differs from the source at offset {}",
                    off + i as u64
                )));
            }
            tick(n as u64);
            off += n as u64;
        }
    }
    Ok(None)
}

fn copy_symlink(s: &Scanned, dpath: &Path) -> Result<(Entry, bool)> {
    let target =
        fs::read_link(&s.path).with_context(|| format!("reading link {}", s.path.display()))?;
    let t = target.to_str().ok_or_else(|| {
        anyhow!(
            "{}: symlink target is not UTF-8; fix it before relocating",
            s.path.display()
        )
    })?;
    let mut e = entry_from(&s.meta);
    e.link = Some(t.to_string());
    let current = fs::read_link(dpath).ok();
    let dm = fs::symlink_metadata(dpath).ok();
    let ok = current.as_deref() == Some(target.as_path())
        && dm.as_ref().is_some_and(|d| {
            d.uid() == e.uid
                && d.gid() == e.gid
                && d.mtime() == e.mtime.s
                && d.mtime_nsec() == e.mtime.ns
        });
    if ok {
        return Ok((e, false));
    }
    let tmp = tmp_name(dpath, e.ino);
    remove_any(&tmp)?;
    std::os::unix::fs::symlink(&target, &tmp)
        .with_context(|| format!("creating symlink {}", tmp.display()))?;
    apply_meta(&s.path, &tmp, &e)?;
    if dm.is_some_and(|d| d.is_dir()) {
        remove_any(dpath)?;
    }
    fs::rename(&tmp, dpath)
        .with_context(|| format!("renaming {} to {}", tmp.display(), dpath.display()))?;
    Ok((e, true))
}

fn copy_special(s: &Scanned, dpath: &Path, e: &Entry) -> Result<bool> {
    if let Ok(d) = fs::symlink_metadata(dpath) {
        if kind_of(&d) == Some(e.kind)
            && d.rdev() == e.rdev
            && d.mode() & 0o7777 == e.mode
            && d.uid() == e.uid
            && d.gid() == e.gid
        {
            return Ok(false);
        }
        remove_any(dpath)?;
    }
    use nix::sys::stat::{mknod, Mode as M, SFlag};
    let kind = match e.kind {
        Kind::Fifo => SFlag::S_IFIFO,
        Kind::CharDev => SFlag::S_IFCHR,
        _ => SFlag::S_IFBLK,
    };
    mknod(dpath, kind, M::from_bits_truncate(0o600), e.rdev as _)
        .with_context(|| format!("creating {}", dpath.display()))?;
    apply_meta(&s.path, dpath, e)?;
    Ok(true)
}

fn ensure_dir(dpath: &Path) -> Result<bool> {
    match fs::symlink_metadata(dpath) {
        Ok(m) if m.is_dir() => Ok(false),
        Ok(_) => {
            remove_any(dpath)?;
            fs::create_dir(dpath).with_context(|| format!("creating {}", dpath.display()))?;
            Ok(true)
        }
        Err(_) => {
            fs::create_dir_all(dpath).with_context(|| format!("creating {}", dpath.display()))?;
            Ok(true)
        }
    }
}

fn sync_target(dst: &Path) -> Result<()> {
    let d = File::open(dst).with_context(|| format!("opening {}", dst.display()))?;
    nix::unistd::syncfs(&d).with_context(|| format!("syncfs {}", dst.display()))?;
    Ok(())
}

fn run_pass(
    src: &Path,
    dst: &Path,
    man: &mut Manifest,
    opts: &CopyOptions,
    mode: Mode,
    progress: &mut dyn FnMut(Progress),
    checkpoint: &mut dyn FnMut(&Manifest) -> Result<()>,
) -> Result<PassReport> {
    if man.src != src || man.dst != dst || man.version != MANIFEST_VERSION {
        *man = Manifest::new(src, dst);
    }
    if mode == Mode::Cold {
        // Nothing of the target dirty in the page cache: patching compares with the device.
        sync_target(dst)?;
    }
    let entries = scan(src)?;
    let mut seen = HashSet::new();
    let total = entries
        .iter()
        .filter(|s| s.meta.is_file() && (s.meta.nlink() < 2 || seen.insert(s.meta.ino())))
        .map(|s| s.meta.size())
        .sum();
    let mut cx = Ctx {
        dst,
        opts,
        buf: vec![0u8; opts.buf_size.max(4096)],
        zeros: vec![0u8; opts.buf_size.clamp(4096, 1 << 20)],
        done: 0,
        total,
        phase: if mode == Mode::Hot {
            Phase::Copy
        } else {
            Phase::Delta
        },
        progress,
    };
    let mut rep = PassReport {
        entries: entries.len(),
        ..Default::default()
    };
    let mut old = std::mem::take(&mut man.entries);
    let mut leaders: HashMap<u64, String> = HashMap::new();
    let mut last_cp = Instant::now();
    let mut since_cp = 0u64;
    let mut files_copied = 0u64; // for the test-only fault points (apply::fault)
    for s in &entries {
        let dpath = if s.rel.is_empty() {
            cx.dst.to_path_buf()
        } else {
            cx.dst.join(&s.rel)
        };
        let prev = old.remove(&s.rel);
        let kind = kind_of(&s.meta).unwrap_or(Kind::File);
        let res: Result<(Entry, bool)> = (|| {
            Ok(match kind {
                Kind::Dir => {
                    let created = ensure_dir(&dpath)?;
                    (entry_from(&s.meta), created)
                }
                Kind::File
                    if s.meta.nlink() > 1
                        && leaders.contains_key(&s.meta.ino())
                        && man.entries.contains_key(&leaders[&s.meta.ino()]) =>
                {
                    let leader = leaders[&s.meta.ino()].clone();
                    let lpath = cx.dst.join(&leader);
                    let lino = fs::symlink_metadata(&lpath)
                        .with_context(|| format!("reading {}", lpath.display()))?
                        .ino();
                    let same = fs::symlink_metadata(&dpath).is_ok_and(|d| d.ino() == lino);
                    if !same {
                        remove_any(&dpath)?;
                        fs::hard_link(&lpath, &dpath).with_context(|| {
                            format!("linking {} to {}", dpath.display(), lpath.display())
                        })?;
                    }
                    let mut e = entry_from(&s.meta);
                    e.hardlink_to = Some(leader);
                    (e, !same)
                }
                Kind::File => {
                    if s.meta.nlink() > 1 {
                        leaders.insert(s.meta.ino(), s.rel.clone());
                    }
                    if file_up_to_date(prev.as_ref(), &s.meta, &dpath) {
                        cx.tick(s.meta.size());
                        (prev.clone().unwrap_or_else(|| entry_from(&s.meta)), false)
                    } else if mode == Mode::Cold && patchable(prev.as_ref(), &s.meta, &dpath) {
                        let (e, written) = patch_regular(&mut cx, s, &dpath, prev.as_ref())?;
                        since_cp += written;
                        rep.copied_bytes += written;
                        (e, true)
                    } else {
                        let e = copy_regular(&mut cx, s, &dpath, mode)?;
                        since_cp += e.size;
                        rep.copied_bytes += e.size;
                        (e, true)
                    }
                }
                Kind::Symlink => copy_symlink(s, &dpath)?,
                Kind::Fifo | Kind::CharDev | Kind::BlockDev => {
                    let e = entry_from(&s.meta);
                    let c = copy_special(s, &dpath, &e)?;
                    (e, c)
                }
            })
        })();
        let (entry, copied) = match res {
            Ok(r) => r,
            // The database dropped it while we were copying: pass 2 settles it.
            Err(_) if mode == Mode::Hot && fs::symlink_metadata(&s.path).is_err() => {
                rep.vanished.push(s.rel.clone());
                continue;
            }
            Err(e) => return Err(e),
        };
        if entry.dirty {
            rep.dirty.push(s.rel.clone());
        }
        if copied {
            rep.copied.push(s.rel.clone());
            if kind == Kind::File {
                files_copied += 1;
                crate::apply::fault::at_copy(
                    if mode == Mode::Hot {
                        crate::apply::fault::Pass::Pass1
                    } else {
                        crate::apply::fault::Pass::Pass2
                    },
                    files_copied,
                );
            }
        } else {
            rep.unchanged += 1;
        }
        man.entries.insert(s.rel.clone(), entry);
        if last_cp.elapsed() >= opts.checkpoint_every || since_cp >= 1 << 30 {
            // Durable data first, then the manifest that vouches for it.
            sync_target(dst)?;
            checkpoint(man)?;
            last_cp = Instant::now();
            since_cp = 0;
        }
    }
    if mode == Mode::Cold {
        rep.removed = remove_extraneous(dst, &man.entries)?;
    }
    // Directory metadata last, deepest first, so adding entries does not disturb the times.
    for s in entries.iter().rev().filter(|s| s.meta.is_dir()) {
        let dpath = if s.rel.is_empty() {
            dst.to_path_buf()
        } else {
            dst.join(&s.rel)
        };
        let Some(e) = man.entries.get(&s.rel) else {
            continue; // vanished during a hot pass
        };
        match apply_meta(&s.path, &dpath, e) {
            Err(_) if mode == Mode::Hot && fs::symlink_metadata(&s.path).is_err() => {}
            r => r?,
        }
    }
    sync_target(dst)?;
    checkpoint(man)?;
    Ok(rep)
}

/// Remove target entries that are not in the source (including leftover temporary files).
fn remove_extraneous(dst: &Path, keep: &BTreeMap<String, Entry>) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            dst.to_path_buf()
        } else {
            dst.join(&rel)
        };
        let rd = fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        for de in rd {
            let de = de.with_context(|| format!("listing {}", dir.display()))?;
            let name = de.file_name().to_string_lossy().into_owned();
            let r = rel_join(&rel, &name);
            if keep.contains_key(&r) {
                if keep[&r].kind == Kind::Dir {
                    stack.push(r);
                }
            } else {
                remove_any(&de.path())?;
                removed.push(r);
            }
        }
    }
    removed.sort();
    Ok(removed)
}

/// Pass 1, database running. Re-running over a partial target converges: entries the manifest
/// vouches for (same source status, target present with the recorded size and mtime) are
/// skipped. `checkpoint` is called regularly (after a syncfs of the target) and at the end;
/// persist the manifest there to make a crash cheap.
pub fn pass1(
    src: &Path,
    dst: &Path,
    man: &mut Manifest,
    opts: &CopyOptions,
    progress: &mut dyn FnMut(Progress),
    checkpoint: &mut dyn FnMut(&Manifest) -> Result<()>,
) -> Result<PassReport> {
    run_pass(src, dst, man, opts, Mode::Hot, progress, checkpoint)
}

/// Pass 2, database stopped: copy what changed since pass 1 (or was flagged dirty), remove what
/// disappeared. A source change during this pass is an error (the database is not stopped).
///
/// `started` persists the manifest once, before the first write, with `pass2_runs` counted:
/// if this pass is interrupted, the next one knows its record of rewritten ranges is partial.
pub fn pass2(
    src: &Path,
    dst: &Path,
    man: &mut Manifest,
    opts: &CopyOptions,
    progress: &mut dyn FnMut(Progress),
    started: &mut dyn FnMut(&Manifest) -> Result<()>,
) -> Result<PassReport> {
    man.pass2_runs += 1;
    started(man)?;
    run_pass(src, dst, man, opts, Mode::Cold, progress, &mut |_| Ok(()))
}

fn target_of(dst: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        dst.to_path_buf()
    } else {
        dst.join(rel)
    }
}

/// Re-read every copied file not yet verified and compare with the hash recorded while copying
/// (files patched in place by pass 2, which have no hash, are compared with the source byte for
/// byte). A mismatch marks the entry dirty (pass 2 copies it again) and is reported.
fn verify_hashes(
    man: &mut Manifest,
    opts: &CopyOptions,
    phase: Phase,
    progress: &mut dyn FnMut(Progress),
    skip_dirty: bool,
) -> Result<VerifyReport> {
    let dst = man.dst.clone();
    let src = man.src.clone();
    let todo: Vec<String> = man
        .entries
        .iter()
        .filter(|(_, e)| {
            e.kind == Kind::File
                && e.hardlink_to.is_none()
                && !e.verified
                && !(skip_dirty && e.dirty)
        })
        .map(|(k, _)| k.clone())
        .collect();
    // Patched ranges are enough only when a single pass 2 ran (see `Manifest::pass2_runs`).
    let ranges_ok = man.pass2_runs <= 1;
    let total: u64 = todo
        .iter()
        .map(|k| {
            let e = &man.entries[k];
            match &e.patched {
                Some(r) if ranges_ok && e.sha256.is_none() => r.iter().map(|x| x.1).sum(),
                _ => e.size,
            }
        })
        .sum();
    let mut rep = VerifyReport::default();
    let mut buf = vec![0u8; opts.buf_size.max(4096)];
    let mut done = 0u64;
    for rel in todo {
        let p = target_of(&dst, &rel);
        let mut tick = |n| {
            done += n;
            progress(Progress { phase, done, total });
        };
        let e = man.entries.get_mut(&rel).expect("listed above");
        if e.sha256.is_none() {
            // Patched in place by pass 2: compare with the source instead of a hash — only the
            // rewritten ranges when the rest was verified before.
            let sp = target_of(&src, &rel);
            let ranges = e.patched.clone().filter(|_| ranges_ok);
            let res = match &ranges {
                Some(r) => compare_ranges(&sp, &p, r, &mut buf, &mut tick),
                None => compare_file(&sp, &p, &mut buf, &mut tick),
            };
            let what = match res {
                Ok(None) => {
                    rep.compared_files += 1;
                    rep.compared_bytes += ranges
                        .as_ref()
                        .map_or(e.size, |r| r.iter().map(|x| x.1).sum());
                    e.verified = true;
                    continue;
                }
                Ok(Some(w)) => w,
                Err(err) => format!("comparing {} with {}: {err}", p.display(), sp.display()),
            };
            e.dirty = true;
            rep.mismatches.push(Mismatch {
                path: rel.clone(),
                what,
            });
            continue;
        }
        match hash_file(&p, &mut buf, &mut tick) {
            Ok((h, n)) => {
                rep.hashed_files += 1;
                rep.hashed_bytes += n;
                if Some(&h) == e.sha256.as_ref() && n == e.size {
                    e.verified = true;
                } else {
                    e.dirty = true;
                    rep.mismatches.push(Mismatch {
                        path: rel.clone(),
                        what: format!(
                            "target sha256 {h} ({n} bytes) differs from the copied {} ({} bytes)",
                            e.sha256.as_deref().unwrap_or("?"),
                            e.size
                        ),
                    });
                }
            }
            Err(err) => {
                e.dirty = true;
                rep.mismatches.push(Mismatch {
                    path: rel.clone(),
                    what: format!("reading {}: {err}", p.display()),
                });
            }
        }
    }
    Ok(rep)
}

/// After pass 1, database still running: re-read the target (page cache dropped) and compare
/// with the hashes recorded while copying. Files flagged dirty are skipped (pass 2 recopies
/// them); mismatching files are flagged dirty and listed.
pub fn verify_pass1(
    man: &mut Manifest,
    opts: &CopyOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyReport> {
    sync_target(&man.dst.clone())?;
    verify_hashes(man, opts, Phase::Verify, progress, true)
}

/// Within downtime, after pass 2: hash only the files not verified yet (the delta), then check
/// the metadata of every entry on both sides. Any mismatch fails the relocation.
pub fn verify_delta(
    man: &mut Manifest,
    opts: &CopyOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<VerifyReport> {
    sync_target(&man.dst.clone())?;
    let mut rep = verify_hashes(man, opts, Phase::VerifyDelta, progress, false)?;
    let meta = check_metadata(&man.src.clone(), &man.dst.clone())?;
    rep.checked_entries = meta.checked_entries;
    rep.mismatches.extend(meta.mismatches);
    Ok(rep)
}

/// Paranoid full verification: hash every file on both sides (reads everything twice).
pub fn verify_full(src: &Path, dst: &Path, opts: &CopyOptions) -> Result<VerifyReport> {
    let mut rep = check_metadata(src, dst)?;
    let mut buf = vec![0u8; opts.buf_size.max(4096)];
    for s in scan(src)?.iter().filter(|s| s.meta.is_file()) {
        let t = target_of(dst, &s.rel);
        let a = hash_file(&s.path, &mut buf, &mut |_| {})
            .with_context(|| format!("hashing {}", s.path.display()))?;
        let b = match hash_file(&t, &mut buf, &mut |_| {}) {
            Ok(b) => b,
            Err(e) => {
                rep.mismatches.push(Mismatch {
                    path: s.rel.clone(),
                    what: format!("reading {}: {e}", t.display()),
                });
                continue;
            }
        };
        rep.hashed_files += 1;
        rep.hashed_bytes += a.1;
        if a != b {
            rep.mismatches.push(Mismatch {
                path: s.rel.clone(),
                what: format!("source sha256 {} != target sha256 {}", a.0, b.0),
            });
        }
    }
    Ok(rep)
}

/// Compare the two trees entry by entry: presence, type, size, mode, owner, link target,
/// mtime (ns), device numbers, xattrs, and hard-link structure. No file data is read.
pub fn check_metadata(src: &Path, dst: &Path) -> Result<VerifyReport> {
    let a = scan(src)?;
    let b = scan(dst)?;
    let mut rep = VerifyReport {
        checked_entries: a.len(),
        ..Default::default()
    };
    let bmap: HashMap<&str, &Scanned> = b.iter().map(|s| (s.rel.as_str(), s)).collect();
    let amap: HashSet<&str> = a.iter().map(|s| s.rel.as_str()).collect();
    let mut push = |path: &str, what: String| {
        rep.mismatches.push(Mismatch {
            path: path.to_string(),
            what,
        })
    };
    for s in &b {
        if !amap.contains(s.rel.as_str()) {
            push(&s.rel, "present in the target only".into());
        }
    }
    // source inode -> target inode, to check that hard-link groups map one to one
    let mut links: HashMap<u64, u64> = HashMap::new();
    for s in &a {
        let Some(t) = bmap.get(s.rel.as_str()) else {
            push(&s.rel, "missing from the target".into());
            continue;
        };
        let (x, y) = (&s.meta, &t.meta);
        let (kx, ky) = (kind_of(x), kind_of(y));
        if kx != ky {
            push(&s.rel, format!("type {kx:?} != {ky:?}"));
            continue;
        }
        if x.mode() & 0o7777 != y.mode() & 0o7777 && kx != Some(Kind::Symlink) {
            push(
                &s.rel,
                format!("mode {:o} != {:o}", x.mode() & 0o7777, y.mode() & 0o7777),
            );
        }
        if (x.uid(), x.gid()) != (y.uid(), y.gid()) {
            push(
                &s.rel,
                format!("owner {}:{} != {}:{}", x.uid(), x.gid(), y.uid(), y.gid()),
            );
        }
        if kx == Some(Kind::File) && x.size() != y.size() {
            push(&s.rel, format!("size {} != {}", x.size(), y.size()));
        }
        if (x.mtime(), x.mtime_nsec()) != (y.mtime(), y.mtime_nsec()) {
            push(
                &s.rel,
                format!(
                    "mtime {}.{:09} != {}.{:09}",
                    x.mtime(),
                    x.mtime_nsec(),
                    y.mtime(),
                    y.mtime_nsec()
                ),
            );
        }
        if matches!(kx, Some(Kind::CharDev | Kind::BlockDev)) && x.rdev() != y.rdev() {
            push(&s.rel, format!("device {} != {}", x.rdev(), y.rdev()));
        }
        if kx == Some(Kind::Symlink) {
            let (la, lb) = (fs::read_link(&s.path).ok(), fs::read_link(&t.path).ok());
            if la != lb {
                push(&s.rel, format!("link target {la:?} != {lb:?}"));
            }
        }
        if kx == Some(Kind::File) && (x.nlink() > 1 || y.nlink() > 1) {
            match links.get(&x.ino()) {
                Some(&ti) if ti != y.ino() => {
                    push(&s.rel, "hard link not preserved in the target".into())
                }
                Some(_) => {}
                None => {
                    if links.values().any(|&v| v == y.ino()) {
                        push(&s.rel, "target hard-linked to an unrelated file".into());
                    }
                    links.insert(x.ino(), y.ino());
                }
            }
        }
        match (xattrs_of(&s.path), xattrs_of(&t.path)) {
            (Ok(xa), Ok(xb)) if xa != xb => {
                let names = |m: &BTreeMap<Vec<u8>, Vec<u8>>| {
                    m.keys()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                push(
                    &s.rel,
                    format!("xattrs differ: [{}] vs [{}]", names(&xa), names(&xb)),
                );
            }
            (Ok(_), Ok(_)) => {}
            (Err(e), _) | (_, Err(e)) => push(&s.rel, format!("{e:#}")),
        }
    }
    Ok(rep)
}

#[cfg(test)]
mod tests;
