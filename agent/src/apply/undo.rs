//! Undo bundles: before dbhost modifies a file it saves the original (or the fact that it did not
//! exist) under `/var/lib/dbhost/undo/<run-id>/`, and rewrites `bundle.tar.gz` there: every saved
//! file plus `manifest.json` with each entry's sha256, mode and owner. `dbhost rollback` restores
//! bundles newest first, so the host ends as it was before the first run.

use crate::host::{atomic_write, Host};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoEntry {
    /// Absolute in-host path.
    pub path: String,
    pub existed: bool,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub mode: Option<u32>,
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub entries: Vec<UndoEntry>,
}

#[derive(Debug)]
pub struct Undo {
    dir: Option<PathBuf>,
    manifest: Manifest,
}

fn stored_name(abs: &str) -> String {
    format!("files{}", abs)
}

impl Undo {
    pub fn root(host: &Host) -> PathBuf {
        host.state_dir().join("undo")
    }

    /// A bundle for run `run_id` (resumes one that already exists).
    pub fn open(host: &Host, run_id: &str) -> Result<Undo> {
        let dir = Self::root(host).join(run_id);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mp = dir.join("manifest.json");
        let manifest = match fs::read(&mp) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("parsing undo manifest {}", mp.display()))?,
            Err(_) => Manifest {
                run_id: run_id.to_string(),
                entries: Vec::new(),
            },
        };
        Ok(Undo {
            dir: Some(dir),
            manifest,
        })
    }

    /// An undo that records nothing (dry runs).
    pub fn disabled() -> Undo {
        Undo {
            dir: None,
            manifest: Manifest::default(),
        }
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Save the current state of `abs` unless this bundle already has it.
    pub fn save(&mut self, host: &Host, abs: &str) -> Result<()> {
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        if self.manifest.entries.iter().any(|e| e.path == abs) {
            return Ok(());
        }
        let src = host.path(abs);
        let entry = match fs::symlink_metadata(&src) {
            Ok(md) if md.is_file() => {
                let data = fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
                let dst = dir.join(stored_name(abs));
                atomic_write(&dst, &data, 0o600)
                    .with_context(|| format!("saving {} for undo", src.display()))?;
                UndoEntry {
                    path: abs.to_string(),
                    existed: true,
                    sha256: Some(hex::encode(Sha256::digest(&data))),
                    mode: Some(md.permissions().mode() & 0o7777),
                    uid: Some(md.uid()),
                    gid: Some(md.gid()),
                }
            }
            Ok(_) => bail!(
                "{} is not a regular file; dbhost only edits regular files",
                src.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => UndoEntry {
                path: abs.to_string(),
                existed: false,
                sha256: None,
                mode: None,
                uid: None,
                gid: None,
            },
            Err(e) => return Err(e).with_context(|| format!("inspecting {}", src.display())),
        };
        self.manifest.entries.push(entry);
        self.write_manifest_and_bundle(&dir)
    }

    fn write_manifest_and_bundle(&self, dir: &Path) -> Result<()> {
        let body = serde_json::to_vec_pretty(&self.manifest)?;
        atomic_write(&dir.join("manifest.json"), &body, 0o600)?;
        // The tar.gz is the portable form of the same content.
        let mut gz = Vec::new();
        {
            let enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
            let mut tb = tar::Builder::new(enc);
            let mut add = |name: &str, data: &[u8]| -> Result<()> {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o600);
                h.set_cksum();
                tb.append_data(&mut h, name, data)?;
                Ok(())
            };
            add("manifest.json", &body)?;
            for e in self.manifest.entries.iter().filter(|e| e.existed) {
                let name = stored_name(&e.path);
                let data = fs::read(dir.join(&name))?;
                add(&name, &data)?;
            }
            tb.into_inner()?.finish()?;
        }
        atomic_write(&dir.join("bundle.tar.gz"), &gz, 0o600)?;
        Ok(())
    }

    /// Run ids of bundles on this host, newest first.
    pub fn list(host: &Host) -> Result<Vec<String>> {
        let root = Self::root(host);
        let mut ids: Vec<String> = match fs::read_dir(&root) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("manifest.json").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("listing {}", root.display())),
        };
        ids.sort_by_key(|id| {
            let n: u64 = id
                .split('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            std::cmp::Reverse((n, id.clone()))
        });
        Ok(ids)
    }

    /// Restore every file of bundle `run_id`: put back saved contents (verified against the
    /// manifest's sha256, with mode and owner) and remove files that did not exist before.
    /// Returns the paths restored.
    pub fn restore(host: &Host, run_id: &str) -> Result<Vec<String>> {
        let dir = Self::root(host).join(run_id);
        let mp = dir.join("manifest.json");
        let m: Manifest = serde_json::from_slice(
            &fs::read(&mp).with_context(|| format!("reading {}", mp.display()))?,
        )
        .with_context(|| format!("parsing {}", mp.display()))?;
        let mut done = Vec::new();
        for e in m.entries.iter().rev() {
            let target = host.path(&e.path);
            if e.existed {
                let src = dir.join(stored_name(&e.path));
                let data = fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
                let sum = hex::encode(Sha256::digest(&data));
                if Some(&sum) != e.sha256.as_ref() {
                    bail!(
                        "undo bundle {} is damaged: {} has sha256 {} but the manifest says {:?}; not restoring it",
                        dir.display(),
                        src.display(),
                        sum,
                        e.sha256
                    );
                }
                atomic_write(&target, &data, e.mode.unwrap_or(0o644))
                    .with_context(|| format!("restoring {}", target.display()))?;
                if let (Some(uid), Some(gid)) = (e.uid, e.gid) {
                    let _ = nix::unistd::chown(
                        &target,
                        Some(nix::unistd::Uid::from_raw(uid)),
                        Some(nix::unistd::Gid::from_raw(gid)),
                    );
                }
            } else {
                match fs::remove_file(&target) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => {
                        return Err(err).with_context(|| format!("removing {}", target.display()))
                    }
                }
            }
            done.push(e.path.clone());
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_modify_restore() {
        let d = tempfile::tempdir().unwrap();
        let host = Host::with_root(d.path());
        let fstab = host.path("/etc/fstab");
        fs::create_dir_all(fstab.parent().unwrap()).unwrap();
        fs::write(&fstab, "orig\n").unwrap();
        let mut u = Undo::open(&host, "100-1").unwrap();
        u.save(&host, "/etc/fstab").unwrap();
        u.save(&host, "/etc/fstab").unwrap(); // second save keeps the original
        u.save(&host, "/etc/mysql/conf.d/99-dbhost.cnf").unwrap();
        fs::write(&fstab, "changed\n").unwrap();
        let cnf = host.path("/etc/mysql/conf.d/99-dbhost.cnf");
        fs::create_dir_all(cnf.parent().unwrap()).unwrap();
        fs::write(&cnf, "[mysqld]\n").unwrap();
        assert_eq!(u.manifest().entries.len(), 2);

        // the bundle is a tar.gz holding the manifest and the original
        let gz = fs::read(Undo::root(&host).join("100-1/bundle.tar.gz")).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]));
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["manifest.json", "files/etc/fstab"]);

        assert_eq!(Undo::list(&host).unwrap(), vec!["100-1".to_string()]);
        Undo::restore(&host, "100-1").unwrap();
        assert_eq!(fs::read_to_string(&fstab).unwrap(), "orig\n");
        assert!(!cnf.exists());
    }

    #[test]
    fn damaged_bundle_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let host = Host::with_root(d.path());
        let f = host.path("/etc/x.conf");
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, "a").unwrap();
        let mut u = Undo::open(&host, "5-1").unwrap();
        u.save(&host, "/etc/x.conf").unwrap();
        fs::write(Undo::root(&host).join("5-1/files/etc/x.conf"), "tampered").unwrap();
        fs::write(&f, "new").unwrap();
        let err = Undo::restore(&host, "5-1").unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
        assert_eq!(fs::read_to_string(&f).unwrap(), "new");
    }

    #[test]
    fn bundles_listed_newest_first() {
        let d = tempfile::tempdir().unwrap();
        let host = Host::with_root(d.path());
        for id in ["100-5", "300-1", "200-9"] {
            let mut u = Undo::open(&host, id).unwrap();
            u.save(&host, "/etc/none").unwrap();
        }
        assert_eq!(Undo::list(&host).unwrap(), vec!["300-1", "200-9", "100-5"]);
    }
}
