//! The md and block-device ioctls. The ONLY unsafe code of the md room lives here; callers get
//! safe functions returning typed values and errors naming the device, the ioctl and the errno.
//!
//! Structs mirror `include/uapi/linux/raid/md_u.h` (all `int`/`unsigned int`, native endian, no
//! padding); request codes are those of MD.md §2.1 (checked in the tests below against the values
//! a C program printed from the 6.1 headers). Block ioctls: `include/uapi/linux/fs.h`.

use nix::errno::Errno;
use std::fs::File;
use std::os::fd::AsRawFd;

/// `MD_MAJOR` (include/uapi/linux/major.h): block major of md devices and ioctl type.
pub const MD_MAJOR: u32 = 9;

/// `mdu_version_t` (md_u.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MduVersion {
    pub major: i32,
    pub minor: i32,
    pub patchlevel: i32,
}

/// `mdu_array_info_t` (md_u.h), 72 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MduArrayInfo {
    pub major_version: i32,
    pub minor_version: i32,
    pub patch_version: i32,
    pub ctime: u32,
    pub level: i32,
    /// KiB per member ("used size"); 0 for RAID0.
    pub size: i32,
    pub nr_disks: i32,
    pub raid_disks: i32,
    pub md_minor: i32,
    pub not_persistent: i32,
    pub utime: u32,
    /// bit0 MD_SB_CLEAN, bit5 CLUSTERED, bit8 BITMAP_PRESENT.
    pub state: i32,
    pub active_disks: i32,
    pub working_disks: i32,
    pub failed_disks: i32,
    pub spare_disks: i32,
    pub layout: i32,
    /// Bytes.
    pub chunk_size: i32,
}

/// `mdu_disk_info_t` (md_u.h), 20 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MduDiskInfo {
    pub number: i32,
    pub major: i32,
    pub minor: i32,
    pub raid_disk: i32,
    pub state: i32,
}

/// `mdu_param_t` (md_u.h), 12 bytes; RUN_ARRAY ignores it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MduParam {
    pub personality: i32,
    pub chunk_size: i32,
    pub max_fault: i32,
}

mod ioctl {
    use super::{MduArrayInfo, MduDiskInfo, MduParam, MduVersion};
    // md_u.h
    nix::ioctl_read!(raid_version, 9, 0x10, MduVersion);
    nix::ioctl_read!(get_array_info, 9, 0x11, MduArrayInfo);
    nix::ioctl_read!(get_disk_info, 9, 0x12, MduDiskInfo);
    nix::ioctl_write_ptr!(add_new_disk, 9, 0x21, MduDiskInfo);
    nix::ioctl_write_ptr!(set_array_info, 9, 0x23, MduArrayInfo);
    nix::ioctl_write_ptr!(run_array, 9, 0x30, MduParam);
    nix::ioctl_none!(stop_array, 9, 0x32);
    nix::ioctl_none!(restart_array_rw, 9, 0x34);
    // linux/fs.h: BLKGETSIZE64 = _IOR(0x12,114,size_t); BLKSSZGET = _IO(0x12,104) (int out);
    // BLKFLSBUF = _IO(0x12,97).
    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
    nix::ioctl_read_bad!(blksszget, nix::request_code_none!(0x12, 104), libc::c_int);
    nix::ioctl_none_bad!(blkflsbuf, nix::request_code_none!(0x12, 97));
}

/// An ioctl that failed: which one, on what, and the errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op} on {device} failed: {} ({})", errno, errno.desc())]
pub struct IoctlError {
    pub op: &'static str,
    pub device: String,
    pub errno: Errno,
}

pub type Result<T> = std::result::Result<T, IoctlError>;

fn err(op: &'static str, device: &str, errno: Errno) -> IoctlError {
    IoctlError {
        op,
        device: device.to_string(),
        errno,
    }
}

/// `RAID_VERSION` on an md node (no privilege needed).
pub fn raid_version(md: &File, device: &str) -> Result<MduVersion> {
    let mut v = MduVersion::default();
    // SAFETY: `md` is an open fd for the call's duration; `v` is a valid, writable
    // `mdu_version_t` with the exact size encoded in the request code.
    unsafe { ioctl::raid_version(md.as_raw_fd(), &mut v) }
        .map_err(|e| err("RAID_VERSION", device, e))?;
    Ok(v)
}

/// `GET_ARRAY_INFO`; ENODEV until the array has raid_disks set.
pub fn get_array_info(md: &File, device: &str) -> Result<MduArrayInfo> {
    let mut v = MduArrayInfo::default();
    // SAFETY: valid fd; `v` is a writable `mdu_array_info_t` (72 bytes, as in the request code).
    unsafe { ioctl::get_array_info(md.as_raw_fd(), &mut v) }
        .map_err(|e| err("GET_ARRAY_INFO", device, e))?;
    Ok(v)
}

/// `GET_DISK_INFO` for slot `number`.
pub fn get_disk_info(md: &File, device: &str, number: i32) -> Result<MduDiskInfo> {
    let mut v = MduDiskInfo {
        number,
        ..Default::default()
    };
    // SAFETY: valid fd; `v` is a readable and writable `mdu_disk_info_t` (20 bytes).
    unsafe { ioctl::get_disk_info(md.as_raw_fd(), &mut v) }
        .map_err(|e| err("GET_DISK_INFO", device, e))?;
    Ok(v)
}

/// `SET_ARRAY_INFO` with only major 1 / minor `minor` (raid_disks = 0 means "just select the
/// superblock format; read everything else from the members"), MD.md §2.4 step 2.
pub fn set_array_info_v1(md: &File, device: &str, minor: i32) -> Result<()> {
    let v = MduArrayInfo {
        major_version: 1,
        minor_version: minor,
        ..Default::default()
    };
    // SAFETY: valid fd; `v` is a fully initialised `mdu_array_info_t` the kernel only reads.
    unsafe { ioctl::set_array_info(md.as_raw_fd(), &v) }
        .map_err(|e| err("SET_ARRAY_INFO", device, e))?;
    Ok(())
}

/// `ADD_NEW_DISK` of the block device `major:minor`; the kernel opens it exclusively and
/// validates its superblock. `number`/`raid_disk` are informational for v1 arrays.
pub fn add_new_disk(md: &File, device: &str, number: i32, major: u32, minor: u32) -> Result<()> {
    let v = MduDiskInfo {
        number,
        major: major as i32,
        minor: minor as i32,
        raid_disk: number,
        state: 0,
    };
    // SAFETY: valid fd; `v` is a fully initialised `mdu_disk_info_t` the kernel only reads.
    unsafe { ioctl::add_new_disk(md.as_raw_fd(), &v) }
        .map_err(|e| err("ADD_NEW_DISK", device, e))?;
    Ok(())
}

/// `RUN_ARRAY` (the argument is ignored by the kernel; we pass zeroes).
pub fn run_array(md: &File, device: &str) -> Result<()> {
    let p = MduParam::default();
    // SAFETY: valid fd; `p` is an initialised `mdu_param_t` that outlives the call.
    unsafe { ioctl::run_array(md.as_raw_fd(), &p) }.map_err(|e| err("RUN_ARRAY", device, e))?;
    Ok(())
}

/// `STOP_ARRAY`: EBUSY while anybody else has the md device open.
pub fn stop_array(md: &File, device: &str) -> Result<()> {
    // SAFETY: valid fd; the request carries no argument.
    unsafe { ioctl::stop_array(md.as_raw_fd()) }.map_err(|e| err("STOP_ARRAY", device, e))?;
    Ok(())
}

/// `RESTART_ARRAY_RW` (clears auto-read-only; harmless for RAID0).
pub fn restart_array_rw(md: &File, device: &str) -> Result<()> {
    // SAFETY: valid fd; the request carries no argument.
    unsafe { ioctl::restart_array_rw(md.as_raw_fd()) }
        .map_err(|e| err("RESTART_ARRAY_RW", device, e))?;
    Ok(())
}

/// `BLKGETSIZE64`: device size in bytes.
pub fn block_size_bytes(dev: &File, device: &str) -> Result<u64> {
    let mut v: u64 = 0;
    // SAFETY: valid fd; `v` is a writable u64 (the kernel writes a u64 for BLKGETSIZE64).
    unsafe { ioctl::blkgetsize64(dev.as_raw_fd(), &mut v) }
        .map_err(|e| err("BLKGETSIZE64", device, e))?;
    Ok(v)
}

/// `BLKSSZGET`: logical block size in bytes.
pub fn logical_block_size(dev: &File, device: &str) -> Result<u32> {
    let mut v: libc::c_int = 0;
    // SAFETY: valid fd; `v` is a writable int, which is what BLKSSZGET stores.
    unsafe { ioctl::blksszget(dev.as_raw_fd(), &mut v) }
        .map_err(|e| err("BLKSSZGET", device, e))?;
    Ok(v as u32)
}

/// `BLKFLSBUF`: write back and drop the device's buffer cache.
pub fn flush_buffers(dev: &File, device: &str) -> Result<()> {
    // SAFETY: valid fd; the request carries no argument.
    unsafe { ioctl::blkflsbuf(dev.as_raw_fd()) }.map_err(|e| err("BLKFLSBUF", device, e))?;
    Ok(())
}

/// 16 random bytes from the kernel (`getrandom(2)`), for array and device UUIDs.
pub fn random_uuid() -> std::io::Result<[u8; 16]> {
    let mut b = [0u8; 16];
    let mut filled = 0;
    while filled < b.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `b`, which is valid
        // writable memory for the whole call.
        let n = unsafe {
            libc::getrandom(
                b[filled..].as_mut_ptr().cast::<libc::c_void>(),
                b.len() - filled,
                0,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn struct_sizes_match_md_u_h() {
        assert_eq!(size_of::<MduVersion>(), 12);
        assert_eq!(size_of::<MduArrayInfo>(), 72);
        assert_eq!(size_of::<MduDiskInfo>(), 20);
        assert_eq!(size_of::<MduParam>(), 12);
    }

    #[test]
    fn request_codes_match_header_values() {
        // Values printed by a C program built against the 6.1 uapi headers (MD.md §2.1).
        #[allow(clippy::unnecessary_cast)] // c_ulong on gnu, c_int on musl
        let c = |x| x as u64;
        assert_eq!(
            c(nix::request_code_read!(9, 0x10, size_of::<MduVersion>())),
            0x800c_0910
        );
        assert_eq!(
            c(nix::request_code_read!(9, 0x11, size_of::<MduArrayInfo>())),
            0x8048_0911
        );
        assert_eq!(
            c(nix::request_code_read!(9, 0x12, size_of::<MduDiskInfo>())),
            0x8014_0912
        );
        assert_eq!(
            c(nix::request_code_write!(9, 0x21, size_of::<MduDiskInfo>())),
            0x4014_0921
        );
        assert_eq!(
            c(nix::request_code_write!(9, 0x23, size_of::<MduArrayInfo>())),
            0x4048_0923
        );
        assert_eq!(
            c(nix::request_code_write!(9, 0x30, size_of::<MduParam>())),
            0x400c_0930
        );
        assert_eq!(c(nix::request_code_none!(9, 0x32)), 0x0000_0932);
        assert_eq!(c(nix::request_code_none!(9, 0x34)), 0x0000_0934);
        // linux/fs.h on x86_64
        assert_eq!(
            c(nix::request_code_read!(0x12, 114, size_of::<u64>())),
            0x8008_1272
        );
        assert_eq!(c(nix::request_code_none!(0x12, 104)), 0x1268);
        assert_eq!(c(nix::request_code_none!(0x12, 97)), 0x1261);
    }

    #[test]
    fn errors_name_op_device_errno() {
        // A regular file is not an md device: the kernel answers ENOTTY, no privilege needed.
        let f = tempfile::tempfile().unwrap();
        let e = get_array_info(&f, "/tmp/x").unwrap_err();
        assert_eq!(e.errno, Errno::ENOTTY);
        let s = e.to_string();
        assert!(
            s.contains("GET_ARRAY_INFO") && s.contains("/tmp/x") && s.contains("ENOTTY"),
            "{s}"
        );
    }

    #[test]
    fn random_uuids_differ() {
        assert_ne!(random_uuid().unwrap(), random_uuid().unwrap());
    }
}
