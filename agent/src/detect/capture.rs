//! `dbhost debug capture-host`: archive exactly what detection reads, so a user's host can be
//! replayed elsewhere with `--sysroot`.
//!
//! Detection runs once with a recording [`Reader`]; every path it read, listed, resolved or
//! tested is archived with each symlink on the way stored as a symlink. Device contents are never
//! copied: the probe results go into `dbhost-capture/probes.json`, which replay uses when
//! `dev/<name>` is not a real block device. The IMDS answer (if any) goes into
//! `dbhost-capture/imds-storage-profile.json`. `dbhost-capture/MANIFEST.sha256` lists the
//! sha256 of every regular file (`sha256sum -c` format, paths relative to the archive root).

use super::reader::Reader;
use super::{detect_with, DetectOptions, Inventory, CAPTURE_DIR};
use crate::host::Host;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// What was written.
#[derive(Debug, Clone)]
pub struct CaptureSummary {
    pub files: usize,
    pub links: usize,
    pub dirs: usize,
    pub inventory: Inventory,
}

struct Collector {
    root: PathBuf,
    croot: PathBuf,
    entries: BTreeMap<PathBuf, Entry>,
}

impl Collector {
    fn rel(&self, p: &Path) -> Option<PathBuf> {
        p.strip_prefix(&self.croot)
            .or_else(|_| p.strip_prefix(&self.root))
            .ok()
            .map(Path::to_path_buf)
    }

    /// Add a path (under the root) and every directory and symlink on the way to it.
    fn add(&mut self, p: &Path, depth: u32) {
        if depth > 40 {
            return;
        }
        let Some(rel) = self.rel(p) else { return };
        if rel.starts_with(CAPTURE_DIR) {
            return;
        }
        let comps: Vec<_> = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_os_string()),
                _ => None,
            })
            .collect();
        let mut cur_rel = PathBuf::new();
        for (i, c) in comps.iter().enumerate() {
            cur_rel.push(c);
            let real = self.root.join(&cur_rel);
            let Ok(m) = fs::symlink_metadata(&real) else {
                return;
            };
            if m.file_type().is_symlink() {
                let Ok(t) = fs::read_link(&real) else { return };
                self.entries.insert(cur_rel.clone(), Entry::Link(t));
                // Continue from the link's target with the rest of the path.
                let Ok(resolved) = fs::canonicalize(&real) else {
                    return;
                };
                // A final link is followed only into a directory (sysfs device dirs); links to
                // device nodes (/dev/disk/by-id/…) are kept as links, never their contents.
                if i + 1 == comps.len() && !resolved.is_dir() {
                    return;
                }
                let mut rest = resolved;
                for c in &comps[i + 1..] {
                    rest.push(c);
                }
                return self.add(&rest, depth + 1);
            } else if m.is_dir() {
                self.entries.entry(cur_rel.clone()).or_insert(Entry::Dir);
            } else if m.is_file() && i + 1 == comps.len() {
                if let Ok(data) = fs::read(&real) {
                    self.entries.insert(cur_rel.clone(), Entry::File(data));
                }
            } else {
                return;
            }
        }
    }

    /// A listed directory: its subdirectories and symlinks (files only when read).
    fn add_listing(&mut self, dir: &Path) {
        self.add(dir, 0);
        let Ok(dir) = fs::canonicalize(dir) else {
            return;
        };
        let dir = dir.as_path();
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_symlink() || ft.is_dir() {
                let p = dir.join(e.file_name());
                if ft.is_symlink() {
                    // Record the link itself, not what it points to.
                    if let (Some(rel), Ok(t)) = (self.rel(&p), fs::read_link(&p)) {
                        self.add(dir, 0);
                        self.entries.insert(rel, Entry::Link(t));
                    }
                } else {
                    self.add(&p, 0);
                }
            }
        }
    }
}

/// Run detection on `host` while recording, and write the capture archive to `out`.
pub fn capture_host(host: &Host, opts: &DetectOptions, out: &Path) -> Result<CaptureSummary> {
    let r = Reader::recording(host);
    let (inventory, extras) = detect_with(&r, opts)?;
    let touched = r.touched();
    let root = host.root().to_path_buf();
    let mut c = Collector {
        croot: fs::canonicalize(&root).unwrap_or_else(|_| root.clone()),
        root,
        entries: BTreeMap::new(),
    };
    for d in &touched.dirs {
        c.add_listing(d);
    }
    for p in &touched.paths {
        c.add(p, 0);
    }
    let cap = PathBuf::from(CAPTURE_DIR);
    c.entries.insert(cap.clone(), Entry::Dir);
    c.entries.insert(
        cap.join("probes.json"),
        Entry::File(serde_json::to_vec_pretty(&extras.probes)?),
    );
    if let Some(b) = &extras.imds_body {
        c.entries.insert(
            cap.join("imds-storage-profile.json"),
            Entry::File(b.clone().into_bytes()),
        );
    }
    let info = serde_json::json!({
        "dbhost_version": env!("CARGO_PKG_VERSION"),
        "source_root": host.root().display().to_string(),
        "platform": inventory.platform,
        "disks": inventory.disks.iter().map(|d| d.name.clone()).collect::<Vec<_>>(),
        "replay": "tar -xzf ARCHIVE -C DIR && dbhost detect --sysroot DIR",
    });
    c.entries.insert(
        cap.join("info.json"),
        Entry::File(serde_json::to_vec_pretty(&info)?),
    );
    let mut manifest = String::new();
    for (p, e) in &c.entries {
        if let Entry::File(d) = e {
            manifest.push_str(&format!(
                "{}  {}\n",
                hex::encode(Sha256::digest(d)),
                p.display()
            ));
        }
    }
    c.entries.insert(
        cap.join("MANIFEST.sha256"),
        Entry::File(manifest.into_bytes()),
    );

    let f = fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut tb = tar::Builder::new(gz);
    let (mut files, mut links, mut dirs) = (0, 0, 0);
    for (p, e) in &c.entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tb.append_data(&mut h, p, std::io::empty())?;
                dirs += 1;
            }
            Entry::File(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(d.len() as u64);
                tb.append_data(&mut h, p, d.as_slice())?;
                files += 1;
            }
            Entry::Link(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tb.append_link(&mut h, p, t)?;
                links += 1;
            }
        }
    }
    tb.into_inner()
        .and_then(|gz| gz.finish())
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(CaptureSummary {
        files,
        links,
        dirs,
        inventory,
    })
}
