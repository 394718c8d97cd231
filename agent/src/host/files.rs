//! File helpers: trimmed attribute reads and atomic writes (temp + fsync + rename + fsync dir).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Read a small text file (a sysfs attribute), trimmed. `None` if missing or unreadable.
pub fn read_trimmed(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// fsync a directory so a rename inside it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Write `data` to `path` atomically: a temp file in the same directory, fsync, rename over the
/// target, fsync the directory. `mode` is applied to the new file. Returns `Ok(false)` when the
/// file already had exactly this content and mode (nothing written), `Ok(true)` when written.
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> io::Result<bool> {
    write_atomic(path, data, mode, None)
}

/// Replace an existing file atomically (as [`atomic_write`]) keeping its mode and owner: the new
/// file gets them before the rename, so a server that owns the file (PostgreSQL's
/// `postgresql.auto.conf`, mode 0600) never sees it owned by root.
pub fn atomic_replace_keeping_owner(path: &Path, data: &[u8]) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path)?;
    write_atomic(path, data, m.mode() & 0o7777, Some((m.uid(), m.gid())))
}

fn write_atomic(
    path: &Path,
    data: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<bool> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if let Ok(old) = fs::read(path) {
        let same_mode = fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777 == mode)
            .unwrap_or(false);
        let same_owner = owner.is_none_or(|(u, g)| {
            fs::metadata(path)
                .map(|m| m.uid() == u && m.gid() == g)
                .unwrap_or(false)
        });
        if old == data && same_mode && same_owner {
            return Ok(false);
        }
    }
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))?;
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.dbhost-tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some((u, g)) = owner {
            std::os::unix::fs::fchown(&f, Some(u), Some(g))?;
        }
        f.sync_all()?;
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fsync_dir(dir)?;
    Ok(true)
}

/// `n` random bytes from the kernel (for UUIDs). Always the running kernel's generator, whatever
/// the host root: randomness is not part of a replayed host tree.
pub fn random_bytes(n: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut b = vec![0u8; n];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// A random RFC 4122 version-4 UUID in its dashed text form.
pub fn random_uuid() -> io::Result<String> {
    let mut b = random_bytes(16)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(format!(
        "{}-{}-{}-{}-{}",
        hex::encode(&b[0..4]),
        hex::encode(&b[4..6]),
        hex::encode(&b[6..8]),
        hex::encode(&b[8..10]),
        hex::encode(&b[10..16])
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_idempotent() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/file.conf");
        assert!(atomic_write(&p, b"a=1\n", 0o644).unwrap());
        assert!(!atomic_write(&p, b"a=1\n", 0o644).unwrap());
        assert!(atomic_write(&p, b"a=2\n", 0o644).unwrap());
        assert_eq!(fs::read_to_string(&p).unwrap(), "a=2\n");
        assert!(atomic_write(&p, b"a=2\n", 0o600).unwrap());
        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn a_replacement_keeps_mode_and_owner() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("postgresql.auto.conf");
        atomic_write(&p, b"primary_conninfo = 'x'\nwork_mem = 4MB\n", 0o600).unwrap();
        let before = fs::metadata(&p).unwrap();
        assert!(atomic_replace_keeping_owner(&p, b"work_mem = 4MB\n").unwrap());
        let after = fs::metadata(&p).unwrap();
        assert_ne!(after.ino(), before.ino(), "replaced, not edited in place");
        assert_eq!(after.permissions().mode() & 0o7777, 0o600);
        assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
        assert_eq!(fs::read_to_string(&p).unwrap(), "work_mem = 4MB\n");
        assert!(!atomic_replace_keeping_owner(&p, b"work_mem = 4MB\n").unwrap());
        assert!(atomic_replace_keeping_owner(&d.path().join("missing"), b"x").is_err());
    }
}
