//! The one door to the system. Every real path (`/sys`, `/dev`, `/proc`, `/etc`, `/run`, `/var`)
//! is built here from a root prefix, so the whole program can run against a fake host tree
//! (`--sysroot DIR`, unit tests) or a mounted image. External programs go through [`Exec`].
//!
//! Rule (STYLE.md): no literal `/sys`, `/dev`, `/etc` outside this module.

mod exec;
mod files;
pub mod users;

pub use exec::{fake_seq, CommandSpec, Exec, ExecOutput, FakeExec, Pipe, RealExec, Spawned};
pub use files::{
    atomic_replace_keeping_owner, atomic_write, fsync_dir, random_bytes, random_uuid, read_trimmed,
};

use std::path::{Path, PathBuf};

/// Whether dbhost runs with root's effective uid (messages only mention root when it does not).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A host root: `/` on a real machine, a temp dir in tests, a replayed capture, or a mounted image.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Self::real()
    }
}

impl Host {
    /// The running system.
    pub fn real() -> Self {
        Host {
            root: PathBuf::from("/"),
        }
    }

    /// A host tree rooted at `root` (fixtures, `--sysroot`, mounted images).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Host { root: root.into() }
    }

    /// True when this is the live system (root is `/`): only then may we issue ioctls,
    /// talk to the kernel or run programs that act on the machine.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Map an absolute host path (e.g. "/etc/fstab") to the path under this root.
    pub fn path(&self, abs: impl AsRef<Path>) -> PathBuf {
        let abs = abs.as_ref();
        let rel = abs.strip_prefix("/").unwrap_or(abs);
        self.root.join(rel)
    }

    /// Inverse of [`Host::path`]: the absolute in-host path of a path under this root.
    pub fn unroot(&self, p: &Path) -> PathBuf {
        match p.strip_prefix(&self.root) {
            Ok(rel) => Path::new("/").join(rel),
            Err(_) => p.to_path_buf(),
        }
    }

    pub fn sys(&self, rel: &str) -> PathBuf {
        self.root.join("sys").join(rel)
    }
    pub fn dev(&self, rel: &str) -> PathBuf {
        self.root.join("dev").join(rel)
    }
    pub fn proc_(&self, rel: &str) -> PathBuf {
        self.root.join("proc").join(rel)
    }
    pub fn etc(&self, rel: &str) -> PathBuf {
        self.root.join("etc").join(rel)
    }
    pub fn run(&self, rel: &str) -> PathBuf {
        self.root.join("run").join(rel)
    }
    pub fn var(&self, rel: &str) -> PathBuf {
        self.root.join("var").join(rel)
    }

    /// `/sys/block/<name>/<attr>`, trimmed; `None` when missing or unreadable.
    pub fn block_attr(&self, dev: &str, attr: &str) -> Option<String> {
        read_trimmed(&self.sys(&format!("block/{dev}/{attr}")))
    }

    /// `/dev/<name>` for a kernel device name.
    pub fn dev_node(&self, name: &str) -> PathBuf {
        self.dev(name)
    }

    /// dbhost's own state directory (`/var/lib/dbhost`).
    pub fn state_dir(&self) -> PathBuf {
        self.var("lib/dbhost")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_under_root() {
        let h = Host::with_root("/tmp/x");
        assert_eq!(
            h.sys("block/sda/size"),
            PathBuf::from("/tmp/x/sys/block/sda/size")
        );
        assert_eq!(h.path("/etc/fstab"), PathBuf::from("/tmp/x/etc/fstab"));
        assert_eq!(
            h.unroot(Path::new("/tmp/x/etc/fstab")),
            PathBuf::from("/etc/fstab")
        );
        assert!(!h.is_live());
        assert!(Host::real().is_live());
    }
}
