//! Overwrite what generalize removes, so a captured image holds no copy of it in free blocks.
//!
//! Deleting a file (or replacing it with an atomic rename) only frees its blocks: a raw scan of
//! the captured disk image still finds a removed SSH key, history or password. Before a regular
//! file is unlinked, truncated or replaced, its bytes are overwritten with zeros in place and
//! flushed (ext4/XFS overwrite allocated blocks in place), then it goes. A file with other hard
//! links is left as it is (zeroing would destroy the other names' content).

use anyhow::{Context, Result};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Zero the content of the open file `f` (its current length) and flush it to the device.
pub fn zero_open(f: &mut fs::File, what: &Path) -> Result<u64> {
    let len = f
        .metadata()
        .with_context(|| format!("inspecting {}", what.display()))?
        .len();
    f.seek(SeekFrom::Start(0))
        .with_context(|| format!("scrubbing {}", what.display()))?;
    let zeros = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])
            .with_context(|| format!("scrubbing {}", what.display()))?;
        left -= n as u64;
    }
    f.sync_all()
        .with_context(|| format!("flushing {}", what.display()))?;
    Ok(len)
}

/// Zero a regular file in place (not through symlinks; not when it has other hard links).
/// Returns the bytes overwritten.
pub fn zero_file(path: &Path) -> Result<u64> {
    let m = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    };
    if !m.is_file() || m.nlink() > 1 || m.len() == 0 {
        return Ok(0);
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {} to scrub it", path.display()))?;
    zero_open(&mut f, path)
}

/// Zero every regular file below `dir` (symlinks are not followed), then the caller removes it.
pub fn zero_tree(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for e in rd {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let ft = e
            .file_type()
            .with_context(|| format!("inspecting {}", e.path().display()))?;
        if ft.is_dir() {
            total += zero_tree(&e.path())?;
        } else if ft.is_file() {
            total += zero_file(&e.path())?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn zeroes_files_in_place_but_not_links_or_shared_inodes() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        fs::write(&a, b"secret-a").unwrap();
        let ino = fs::metadata(&a).unwrap().ino();
        assert_eq!(zero_file(&a).unwrap(), 8);
        assert_eq!(fs::read(&a).unwrap(), vec![0u8; 8]);
        assert_eq!(
            fs::metadata(&a).unwrap().ino(),
            ino,
            "same inode: overwritten in place"
        );

        let shared = d.path().join("shared");
        fs::write(&shared, b"keep me").unwrap();
        fs::hard_link(&shared, d.path().join("other-name")).unwrap();
        assert_eq!(zero_file(&shared).unwrap(), 0);
        assert_eq!(fs::read(&shared).unwrap(), b"keep me");

        let target = d.path().join("target");
        fs::write(&target, b"outside").unwrap();
        let sub = d.path().join("tree/sub");
        fs::create_dir_all(&sub).unwrap();
        fs::write(sub.join("f"), b"secret-f").unwrap();
        symlink(&target, sub.join("link")).unwrap();
        assert_eq!(zero_tree(&d.path().join("tree")).unwrap(), 8);
        assert_eq!(fs::read(sub.join("f")).unwrap(), vec![0u8; 8]);
        assert_eq!(
            fs::read(&target).unwrap(),
            b"outside",
            "symlinks are not followed"
        );
        assert_eq!(zero_file(&d.path().join("missing")).unwrap(), 0);
    }

    #[test]
    fn an_edited_file_leaves_zeros_in_its_old_blocks_not_the_secret() {
        use std::io::Read;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("debian.cnf");
        fs::write(&p, b"password = hunter2\n").unwrap();
        // A reader of the old inode sees what its freed blocks would hold.
        let mut old = fs::File::open(&p).unwrap();
        crate::generalize::write_keeping_owner(&p, b"password =\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"password =\n");
        let mut buf = Vec::new();
        old.read_to_end(&mut buf).unwrap();
        assert_eq!(buf, vec![0u8; 19]);
        // Same content again: nothing replaced, the live file is untouched.
        crate::generalize::write_keeping_owner(&p, b"password =\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"password =\n");
    }
}
