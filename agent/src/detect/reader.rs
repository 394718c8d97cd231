//! Every file-system read detection makes goes through [`Reader`], so `debug capture-host` can
//! record exactly which paths were touched and archive them (symlinks as symlinks).

use crate::host::{read_trimmed, Host};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

pub struct Reader<'a> {
    pub host: &'a Host,
    /// The root with its own symlinks resolved (to strip it from canonical paths).
    croot: PathBuf,
    /// Paths (under the host root) that were read, listed or resolved.
    log: Option<RefCell<Touched>>,
}

#[derive(Debug, Default, Clone)]
pub struct Touched {
    /// Files read, links read, paths resolved or tested.
    pub paths: BTreeSet<PathBuf>,
    /// Directories whose entries were listed.
    pub dirs: BTreeSet<PathBuf>,
}

impl<'a> Reader<'a> {
    pub fn new(host: &'a Host) -> Self {
        Reader {
            host,
            croot: fs::canonicalize(host.root()).unwrap_or_else(|_| host.root().to_path_buf()),
            log: None,
        }
    }
    pub fn recording(host: &'a Host) -> Self {
        Reader {
            log: Some(RefCell::new(Touched::default())),
            ..Self::new(host)
        }
    }
    pub fn touched(&self) -> Touched {
        self.log
            .as_ref()
            .map(|l| l.borrow().clone())
            .unwrap_or_default()
    }
    fn note(&self, p: &Path) {
        if let Some(l) = &self.log {
            l.borrow_mut().paths.insert(p.to_path_buf());
        }
    }

    /// A small text file, trimmed; `None` when missing or unreadable.
    pub fn text(&self, p: &Path) -> Option<String> {
        self.note(p);
        read_trimmed(p)
    }
    /// A small binary file.
    pub fn bytes(&self, p: &Path) -> Option<Vec<u8>> {
        self.note(p);
        fs::read(p).ok()
    }
    pub fn exists(&self, p: &Path) -> bool {
        self.note(p);
        fs::symlink_metadata(p).is_ok()
    }
    pub fn read_link(&self, p: &Path) -> Option<PathBuf> {
        self.note(p);
        fs::read_link(p).ok()
    }
    /// Resolve every symlink (relative links stay inside the host tree).
    pub fn canonicalize(&self, p: &Path) -> Option<PathBuf> {
        self.note(p);
        fs::canonicalize(p).ok()
    }
    /// Sorted entry names of a directory; empty when missing.
    pub fn list(&self, p: &Path) -> Vec<String> {
        if let Some(l) = &self.log {
            l.borrow_mut().dirs.insert(p.to_path_buf());
        }
        let mut v: Vec<String> = fs::read_dir(p)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
    /// Recursively list symlinks under a directory: (relative path, link target).
    pub fn links_under(&self, dir: &Path) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        self.walk_links(dir, "", &mut out, 0);
        out
    }
    fn walk_links(&self, dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>, depth: u32) {
        if depth > 6 {
            return;
        }
        for name in self.list(dir) {
            let p = dir.join(&name);
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            match fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Some(t) = self.read_link(&p) {
                        out.push((rel, t));
                    }
                }
                Ok(m) if m.is_dir() => self.walk_links(&p, &rel, out, depth + 1),
                _ => {}
            }
        }
    }
    /// The host-relative form of a path under the root ("sys/devices/…").
    pub fn rel(&self, p: &Path) -> String {
        p.strip_prefix(&self.croot)
            .or_else(|_| p.strip_prefix(self.host.root()))
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    }
}
