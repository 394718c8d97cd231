//! Benchmark hook for the VM benchmark (issue 5 §8): copy throughput of the relocation copier
//! for a directory, next to a read-only hashing pass over the same tree, so the harness can put
//! them beside raw device bandwidth (`dd`). Prints figures; asserts nothing about time.

use super::copy::{self, CopyOptions, Manifest};
use anyhow::{bail, Context, Result};
use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
use serde::Serialize;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
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
    /// Baseline measured in the same run: a plain copy of the same files (read + write with the
    /// same buffer size, no hashing, no metadata, one syncfs at the end), the mean of one run
    /// before and one after the copier's.
    pub plain_secs: f64,
    pub plain_bytes_per_sec: f64,
    /// copy_bytes_per_sec / plain_bytes_per_sec (issue 5's target: >= 0.9).
    pub copy_ratio: f64,
}

impl CopyBench {
    pub fn render(&self) -> String {
        let mb = |b: f64| b / 1e6;
        format!(
            "files {}  bytes {}\ncopy   {:.3} s  {:.1} MB/s  (pass 1: read + sha256 + write + metadata)\n\
             plain  {:.3} s  {:.1} MB/s  (baseline: read + write, same files, same run)\n\
             ratio copy / plain = {:.3}   (target >= 0.9)\n\
             verify {:.3} s  {:.1} MB/s\nempty delta pass {:.3} s\n",
            self.files,
            self.bytes,
            self.copy_secs,
            mb(self.copy_bytes_per_sec),
            self.plain_secs,
            mb(self.plain_bytes_per_sec),
            self.copy_ratio,
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

/// Ask the kernel to drop the source's clean cached pages, so each run reads from the device
/// (no root needed; best effort).
fn drop_cache(src: &Path, files: &[PathBuf]) {
    for f in files {
        if let Ok(h) = File::open(src.join(f)) {
            let _ = posix_fadvise(&h, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
        }
    }
}

/// The baseline: read + write every file with a `buf_size` buffer, one syncfs at the end.
fn plain_copy(src: &Path, dst: &Path, files: &[PathBuf], buf_size: usize) -> Result<(u64, f64)> {
    drop_cache(src, files);
    let t = Instant::now();
    let mut buf = vec![0u8; buf_size.max(4096)];
    let mut bytes = 0u64;
    for f in files {
        let to = dst.join(f);
        if let Some(d) = to.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        let mut r = File::open(src.join(f))
            .with_context(|| format!("opening {}", src.join(f).display()))?;
        let mut w = File::create(&to).with_context(|| format!("creating {}", to.display()))?;
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n])?;
            bytes += n as u64;
        }
    }
    std::fs::create_dir_all(dst)?;
    nix::unistd::syncfs(&File::open(dst)?).with_context(|| format!("syncfs {}", dst.display()))?;
    Ok((bytes, t.elapsed().as_secs_f64()))
}

/// Copy `src` into `dst` (which must not exist or be empty: it is the benchmark's own scratch
/// target, left in place for the caller to inspect or remove), then verify, then run an empty
/// delta pass; report throughput next to a plain copy of the same files into `dst`.plain
/// (removed afterwards), measured before and after the copier in the same run.
pub fn measure_copy(src: &Path, dst: &Path, opts: &CopyOptions) -> Result<CopyBench> {
    if dst.exists() && std::fs::read_dir(dst)?.next().is_some() {
        bail!(
            "{} is not empty; the copy benchmark needs an empty scratch directory",
            dst.display()
        );
    }
    let room = copy::check_room(src, dst, opts)?;
    let files = copy::regular_files(src)?;
    let plain_dir = PathBuf::from(format!("{}.plain", dst.display()));
    let _ = std::fs::remove_dir_all(&plain_dir);
    let mut plain = vec![plain_copy(src, &plain_dir, &files, opts.buf_size)?];
    let _ = std::fs::remove_dir_all(&plain_dir);
    let mut man = Manifest::new(src, dst);
    drop_cache(src, &files);
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
    let _ = std::fs::remove_dir_all(&plain_dir);
    plain.push(plain_copy(src, &plain_dir, &files, opts.buf_size)?);
    let _ = std::fs::remove_dir_all(&plain_dir);
    let plain_secs = plain.iter().map(|p| p.1).sum::<f64>() / plain.len() as f64;
    let plain_rate = rate(plain[0].0, plain_secs);
    let copy_rate = rate(rep.copied_bytes, copy_secs);
    Ok(CopyBench {
        files: room.files,
        bytes: room.src_bytes,
        copy_secs,
        copy_bytes_per_sec: copy_rate,
        verify_secs,
        verify_bytes_per_sec: rate(v.hashed_bytes, verify_secs),
        delta_secs,
        plain_secs,
        plain_bytes_per_sec: plain_rate,
        copy_ratio: if plain_rate > 0.0 {
            copy_rate / plain_rate
        } else {
            0.0
        },
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
        assert!(b.render().contains("ratio copy / plain"), "{}", b.render());
        assert!(b.plain_bytes_per_sec > 0.0 && b.copy_ratio > 0.0, "{b:?}");
        assert!(
            !d.path().join("dst.plain").exists(),
            "baseline scratch removed"
        );
        assert!(d.path().join("dst/a/f").is_file());
        let e = measure_copy(&src, &d.path().join("dst"), &opts).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
    }
}
