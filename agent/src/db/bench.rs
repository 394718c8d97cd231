//! Benchmark hook for the VM benchmark (issue 5 §8): copy throughput of the relocation copier
//! for a directory, next to a read-only hashing pass over the same tree, so the harness can put
//! them beside raw device bandwidth (`dd`). Prints figures; asserts nothing about time.

use super::copy::{self, CopyOptions, Manifest};
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Figures of one benchmark run (bytes are logical file bytes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyBench {
    pub files: usize,
    pub bytes: u64,
    /// pass 1 into an empty target: read + sha256 + write (+ syncfs at the end).
    pub copy_secs: f64,
    pub copy_bytes_per_sec: f64,
    /// verify_pass1: re-read the target with the page cache dropped, sha256.
    pub verify_secs: f64,
    pub verify_bytes_per_sec: f64,
    /// pass 2 with nothing changed: the fixed cost of the downtime window (scan + stat).
    pub delta_secs: f64,
}

impl CopyBench {
    pub fn render(&self) -> String {
        let mb = |b: f64| b / 1e6;
        format!(
            "files {}  bytes {}\ncopy   {:.3} s  {:.1} MB/s\nverify {:.3} s  {:.1} MB/s\nempty delta pass {:.3} s\n",
            self.files,
            self.bytes,
            self.copy_secs,
            mb(self.copy_bytes_per_sec),
            self.verify_secs,
            mb(self.verify_bytes_per_sec),
            self.delta_secs
        )
    }
}

fn rate(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / secs
    } else {
        0.0
    }
}

/// Copy `src` into `dst` (which must not exist or be empty: it is the benchmark's own scratch
/// target, left in place for the caller to inspect or remove), then verify, then run an empty
/// delta pass; report throughput.
pub fn measure_copy(src: &Path, dst: &Path, opts: &CopyOptions) -> Result<CopyBench> {
    if dst.exists() && std::fs::read_dir(dst)?.next().is_some() {
        bail!(
            "{} is not empty; the copy benchmark needs an empty scratch directory",
            dst.display()
        );
    }
    let room = copy::check_room(src, dst, opts)?;
    let mut man = Manifest::new(src, dst);
    let t = Instant::now();
    let rep = copy::pass1(src, dst, &mut man, opts, &mut |_| {}, &mut |_| Ok(()))?;
    let copy_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let v = copy::verify_pass1(&mut man, opts, &mut |_| {})?;
    let verify_secs = t.elapsed().as_secs_f64();
    v.ensure_ok("benchmark verification")?;
    let t = Instant::now();
    copy::pass2(src, dst, &mut man, opts, &mut |_| {}, &mut |_| Ok(()))?;
    let delta_secs = t.elapsed().as_secs_f64();
    Ok(CopyBench {
        files: room.files,
        bytes: room.src_bytes,
        copy_secs,
        copy_bytes_per_sec: rate(rep.copied_bytes, copy_secs),
        verify_secs,
        verify_bytes_per_sec: rate(v.hashed_bytes, verify_secs),
        delta_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_small_tree() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join("a")).unwrap();
        std::fs::write(src.join("a/f"), vec![1u8; 3 << 20]).unwrap();
        std::fs::write(src.join("g"), b"small").unwrap();
        let opts = CopyOptions {
            margin_bytes: Some(0),
            ..Default::default()
        };
        let b = measure_copy(&src, &d.path().join("dst"), &opts).unwrap();
        assert_eq!((b.files, b.bytes), (2, (3 << 20) + 5));
        assert!(b.render().contains("MB/s"));
        assert!(d.path().join("dst/a/f").is_file());
        let e = measure_copy(&src, &d.path().join("dst"), &opts).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
    }
}
