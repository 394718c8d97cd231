//! The only `unsafe` in `db/`: extended attributes through libc (`l*xattr`, never following
//! symlinks; ACLs (`system.posix_acl_access`/`_default`) and security labels (`security.*`) are
//! xattrs, so copying every xattr copies them too), and connecting a unix socket with another
//! effective uid (PostgreSQL's `peer` authentication).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn cname(n: &OsStr) -> io::Result<CString> {
    CString::new(n.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "xattr name contains a NUL byte",
        )
    })
}

/// True when the filesystem (or the file type) simply does not support xattrs.
pub fn unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// Names of all xattrs of `p` (symlinks not followed). A filesystem without xattr support
/// gives an empty list.
pub fn list(p: &Path) -> io::Result<Vec<OsString>> {
    let c = cpath(p)?;
    loop {
        // SAFETY: `c` is a valid NUL-terminated path; a null buffer with size 0 asks for the size.
        let n = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if unsupported(&e) {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; n as usize];
        // SAFETY: `buf` is a writable buffer of exactly `buf.len()` bytes.
        let m = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if m < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) {
                continue; // grew between the two calls
            }
            return Err(e);
        }
        buf.truncate(m as usize);
        let mut names: Vec<OsString> = buf
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| OsString::from_vec(s.to_vec()))
            .collect();
        names.sort();
        return Ok(names);
    }
}

/// Value of xattr `name` of `p` (symlinks not followed).
pub fn get(p: &Path, name: &OsStr) -> io::Result<Vec<u8>> {
    let c = cpath(p)?;
    let n_c = cname(name)?;
    loop {
        // SAFETY: valid NUL-terminated path and name; null buffer with size 0 asks for the size.
        let n = unsafe { libc::lgetxattr(c.as_ptr(), n_c.as_ptr(), std::ptr::null_mut(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; n as usize];
        if n == 0 {
            return Ok(buf);
        }
        // SAFETY: `buf` is a writable buffer of exactly `buf.len()` bytes.
        let m = unsafe {
            libc::lgetxattr(c.as_ptr(), n_c.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        if m < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) {
                continue;
            }
            return Err(e);
        }
        buf.truncate(m as usize);
        return Ok(buf);
    }
}

/// Set xattr `name` of `p` to `value` (symlinks not followed).
pub fn set(p: &Path, name: &OsStr, value: &[u8]) -> io::Result<()> {
    let c = cpath(p)?;
    let n_c = cname(name)?;
    // SAFETY: valid NUL-terminated path and name; `value` is readable for `value.len()` bytes.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n_c.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Remove xattr `name` of `p` (symlinks not followed). Already absent is fine.
pub fn remove(p: &Path, name: &OsStr) -> io::Result<()> {
    let c = cpath(p)?;
    let n_c = cname(name)?;
    // SAFETY: valid NUL-terminated path and name.
    let r = unsafe { libc::lremovexattr(c.as_ptr(), n_c.as_ptr()) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENODATA) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Connect to the unix socket `path` with effective uid `uid`, then give the calling thread its
/// uid back. The server reads the peer's credentials as they were at connect(2) (SO_PEERCRED),
/// so a root process can log in as `postgres` through `peer` authentication without a password.
/// The change is made with the raw system call, which acts on the calling thread only (glibc's
/// `seteuid` would change every thread of the process); callers run this on a thread of its
/// own.
pub fn connect_unix_as(path: &Path, uid: u32) -> io::Result<std::os::unix::net::UnixStream> {
    let keep = libc::uid_t::MAX; // -1: leave the real and saved uid (root) as they are
                                 // SAFETY: setresuid takes three integers and touches no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_setresuid, keep, uid, keep) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let res = std::os::unix::net::UnixStream::connect(path);
    // The saved uid is still 0, so the effective uid can go back.
    // SAFETY: as above.
    let back = unsafe { libc::syscall(libc::SYS_setresuid, keep, 0 as libc::uid_t, keep) };
    if back != 0 {
        return Err(io::Error::last_os_error());
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_xattr_roundtrip() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        match set(&f, OsStr::new("user.dbhost.test"), b"v1") {
            Err(e) if unsupported(&e) => {
                eprintln!(
                    "skipping: {} does not support user xattrs",
                    d.path().display()
                );
                return;
            }
            r => r.unwrap(),
        }
        assert_eq!(get(&f, OsStr::new("user.dbhost.test")).unwrap(), b"v1");
        assert!(list(&f)
            .unwrap()
            .contains(&OsString::from("user.dbhost.test")));
        remove(&f, OsStr::new("user.dbhost.test")).unwrap();
        remove(&f, OsStr::new("user.dbhost.test")).unwrap();
        assert!(get(&f, OsStr::new("user.dbhost.test")).is_err());
    }
}
