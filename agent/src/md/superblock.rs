//! md v1.x superblock (`struct mdp_superblock_1`), pure code over byte buffers.
//!
//! Layout, checksum and placement: MD.md §1 (kernel `include/uapi/linux/raid/md_p.h`,
//! `calc_sb_1_csum` in `drivers/md/md.c`). Every multi-byte field is little-endian. The kernel
//! reads 4096 bytes at the superblock start; we always write a full zero-padded 4096-byte block.
//!
//! [`parse`] returns `Ok(None)` when there is no magic, an error on a bad version, an impossible
//! `max_dev` or a checksum mismatch. [`decode`] is the lenient form used by `examine`: it keeps a
//! superblock with a bad checksum and reports the checksum it expected.
//!
//! [`scan`] looks at every place an md superblock can live (0.90, 1.0, 1.1, 1.2) so stale
//! metadata on a reused disk is reported, and so the wipe set covers all of them.

use serde::Serialize;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};

/// `MD_SB_MAGIC`, stored little-endian as `fc 4e 2b a9`.
pub const MD_SB_MAGIC: u32 = 0xa92b_4efc;
/// Bytes the kernel reads at the superblock start, and the size we write.
pub const SB_BYTES: usize = 4096;
/// Fixed part of the v1 superblock; `dev_roles` follow.
pub const SB_FIXED: usize = 256;
/// Largest `max_dev` that fits in 4096 bytes: (4096 − 256) / 2.
pub const MAX_DEV_LIMIT: u32 = 1920;
/// Number of `dev_roles` slots mdadm writes for up to 128 devices.
pub const MDADM_MAX_DEV: u32 = 128;
/// `resync_offset` meaning "clean" (MaxSector).
pub const RESYNC_CLEAN: u64 = u64::MAX;
/// Byte offset of `sb_csum` inside the superblock.
pub const CSUM_OFFSET: usize = 216;

/// feature_map bits (MD.md §1.3).
pub mod feature {
    pub const BITMAP_OFFSET: u32 = 1;
    pub const RECOVERY_OFFSET: u32 = 2;
    pub const RESHAPE_ACTIVE: u32 = 4;
    pub const BAD_BLOCKS: u32 = 8;
    pub const REPLACEMENT: u32 = 16;
    pub const RESHAPE_BACKWARDS: u32 = 32;
    pub const NEW_OFFSET: u32 = 64;
    pub const RECOVERY_BITMAP: u32 = 128;
    pub const CLUSTERED: u32 = 256;
    pub const JOURNAL: u32 = 512;
    pub const PPL: u32 = 1024;
    pub const MULTIPLE_PPLS: u32 = 2048;
    /// "layout is meaningful for RAID0" (kernel ≥ 5.4 and stable backports).
    pub const RAID0_LAYOUT: u32 = 4096;
    /// `MD_FEATURE_ALL`: the kernel rejects any other bit.
    pub const ALL: u32 = 0x1fff;
}

/// dev_roles special values.
pub mod role {
    pub const SPARE: u16 = 0xffff;
    pub const FAULTY: u16 = 0xfffe;
    pub const JOURNAL: u16 = 0xfffd;
    /// Roles below this are active slots.
    pub const MAX: u16 = 0xff00;
}

/// RAID0 layout values (MD.md §1.9).
pub const RAID0_ORIG_LAYOUT: u32 = 1;
pub const RAID0_ALT_MULTIZONE_LAYOUT: u32 = 2;

/// The 16-byte array (set) UUID, in on-disk byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ArrayUuid(pub [u8; 16]);

impl ArrayUuid {
    /// mdadm's text form: the bytes in disk order in four groups of four (`xxxxxxxx:...`).
    pub fn mdadm(&self) -> String {
        let h = hex::encode(self.0);
        format!("{}:{}:{}:{}", &h[0..8], &h[8..16], &h[16..24], &h[24..32])
    }
    /// Kernel `md/uuid` / blkid form (`%pU`): 8-4-4-4-12 in disk order.
    pub fn dashed(&self) -> String {
        let h = hex::encode(self.0);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
    /// The form in mdadm's `/run/mdadm/map`: host-endian (little-endian) u32 words.
    pub fn map_words(&self) -> String {
        let w: Vec<String> = self
            .0
            .chunks_exact(4)
            .map(|c| format!("{:08x}", u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect();
        w.join(":")
    }
    /// Parse mdadm (`a:b:c:d`), dashed or plain 32-hex forms.
    pub fn parse(s: &str) -> Option<ArrayUuid> {
        let h: String = s.chars().filter(|c| *c != ':' && *c != '-').collect();
        let v = hex::decode(h).ok()?;
        let a: [u8; 16] = v.try_into().ok()?;
        Some(ArrayUuid(a))
    }
}

impl fmt::Display for ArrayUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.mdadm())
    }
}
impl fmt::Debug for ArrayUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArrayUuid({})", self.mdadm())
    }
}
impl Serialize for ArrayUuid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.mdadm())
    }
}

/// Which v1 sub-version: where the superblock sits (MD.md §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub enum Minor {
    /// 1.0: near the end.
    V1_0,
    /// 1.1: at byte 0.
    V1_1,
    /// 1.2: at byte 4096.
    V1_2,
}

impl Minor {
    pub fn number(self) -> u8 {
        match self {
            Minor::V1_0 => 0,
            Minor::V1_1 => 1,
            Minor::V1_2 => 2,
        }
    }
    /// Superblock start in sectors for a device of `dev_sectors`; `None` if it does not fit.
    pub fn sb_start(self, dev_sectors: u64) -> Option<u64> {
        match self {
            Minor::V1_0 => dev_sectors.checked_sub(16).map(|s| s & !7),
            Minor::V1_1 => Some(0),
            Minor::V1_2 => Some(8),
        }
        .filter(|s| (s + 8) <= dev_sectors)
    }
}

impl fmt::Display for Minor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.number())
    }
}

/// Byte offset of a 0.90 superblock: 64 KiB before the 64 KiB-aligned end (MD.md §1.1).
pub fn v090_offset(dev_bytes: u64) -> Option<u64> {
    (dev_bytes & !65535).checked_sub(65536)
}

/// Errors from decoding a buffer that carries the v1 magic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SbError {
    #[error(
        "buffer of {0} bytes is too short for an md superblock (need {SB_FIXED} + 2 per device)"
    )]
    TooShort(usize),
    #[error("md superblock magic found but major_version is {0}, not 1")]
    BadVersion(u32),
    #[error("md superblock max_dev {0} exceeds {MAX_DEV_LIMIT}")]
    MaxDev(u32),
    #[error("md superblock checksum {stored:08x} does not match the expected {expected:08x}")]
    BadChecksum { stored: u32, expected: u32 },
}

/// Every field of `struct mdp_superblock_1` (MD.md §1.2). `major_version` is always 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Superblock {
    pub feature_map: u32,
    pub pad0: u32,
    pub set_uuid: ArrayUuid,
    #[serde(serialize_with = "ser_name")]
    pub set_name: [u8; 32],
    pub ctime: u64,
    pub level: i32,
    pub layout: u32,
    pub size: u64,
    pub chunksize: u32,
    pub raid_disks: u32,
    pub bitmap_offset: u32,
    pub new_level: u32,
    pub reshape_position: u64,
    pub delta_disks: u32,
    pub new_layout: u32,
    pub new_chunk: u32,
    pub new_offset: u32,
    pub data_offset: u64,
    pub data_size: u64,
    pub super_offset: u64,
    pub recovery_offset: u64,
    pub dev_number: u32,
    pub cnt_corrected_read: u32,
    #[serde(serialize_with = "ser_hex")]
    pub device_uuid: [u8; 16],
    pub devflags: u8,
    pub bblog_shift: u8,
    pub bblog_size: u16,
    pub bblog_offset: u32,
    pub utime: u64,
    pub events: u64,
    pub resync_offset: u64,
    /// As stored; [`Superblock::encode`] recomputes it.
    pub sb_csum: u32,
    pub max_dev: u32,
    #[serde(serialize_with = "ser_hex")]
    pub pad3: [u8; 32],
    pub dev_roles: Vec<u16>,
}

fn ser_name<S: serde::Serializer>(n: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&name_str(n))
}
fn ser_hex<S: serde::Serializer, const N: usize>(b: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

/// `set_name` as text, like mdadm's `%.32s` (up to the first NUL).
pub fn name_str(n: &[u8; 32]) -> String {
    let end = n.iter().position(|b| *b == 0).unwrap_or(32);
    String::from_utf8_lossy(&n[..end]).into_owned()
}

/// A decoded superblock plus the checksum it should carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub sb: Superblock,
    pub expected_csum: u32,
}

impl Decoded {
    pub fn checksum_ok(&self) -> bool {
        self.sb.sb_csum == self.expected_csum
    }
}

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}
fn arr<const N: usize>(b: &[u8], o: usize) -> [u8; N] {
    b[o..o + N].try_into().expect("fixed slice")
}

/// Checksum of a v1 superblock in `buf` (which starts at the superblock), per `calc_sb_1_csum`:
/// little-endian u32 words over `256 + 2*max_dev` bytes with `sb_csum` taken as zero, a trailing
/// le16 when `max_dev` is odd, summed into a u64 and folded once to 32 bits.
pub fn checksum(buf: &[u8]) -> Result<u32, SbError> {
    if buf.len() < SB_FIXED {
        return Err(SbError::TooShort(buf.len()));
    }
    let max_dev = le32(buf, 220);
    if max_dev > MAX_DEV_LIMIT {
        return Err(SbError::MaxDev(max_dev));
    }
    let len = SB_FIXED + 2 * max_dev as usize;
    if buf.len() < len {
        return Err(SbError::TooShort(buf.len()));
    }
    let mut sum: u64 = 0;
    let words = len / 4;
    for i in 0..words {
        let o = i * 4;
        if o == CSUM_OFFSET {
            continue;
        }
        sum += u64::from(le32(buf, o));
    }
    if len % 4 == 2 {
        sum += u64::from(le16(buf, len - 2));
    }
    Ok(((sum & 0xffff_ffff) + (sum >> 32)) as u32)
}

/// True when `buf` begins with the v1 magic.
pub fn has_magic(buf: &[u8]) -> bool {
    buf.len() >= 4 && le32(buf, 0) == MD_SB_MAGIC
}

/// Lenient decode: `Ok(None)` without magic; errors for a wrong major version, impossible
/// `max_dev` or a short buffer; a checksum mismatch is NOT an error here (see [`Decoded`]).
pub fn decode(buf: &[u8]) -> Result<Option<Decoded>, SbError> {
    if !has_magic(buf) {
        return Ok(None);
    }
    if buf.len() < SB_FIXED {
        return Err(SbError::TooShort(buf.len()));
    }
    let major = le32(buf, 4);
    if major != 1 {
        return Err(SbError::BadVersion(major));
    }
    let expected_csum = checksum(buf)?;
    let max_dev = le32(buf, 220);
    let dev_roles = (0..max_dev as usize)
        .map(|i| le16(buf, SB_FIXED + 2 * i))
        .collect();
    let sb = Superblock {
        feature_map: le32(buf, 8),
        pad0: le32(buf, 12),
        set_uuid: ArrayUuid(arr(buf, 16)),
        set_name: arr(buf, 32),
        ctime: le64(buf, 64),
        level: le32(buf, 72) as i32,
        layout: le32(buf, 76),
        size: le64(buf, 80),
        chunksize: le32(buf, 88),
        raid_disks: le32(buf, 92),
        bitmap_offset: le32(buf, 96),
        new_level: le32(buf, 100),
        reshape_position: le64(buf, 104),
        delta_disks: le32(buf, 112),
        new_layout: le32(buf, 116),
        new_chunk: le32(buf, 120),
        new_offset: le32(buf, 124),
        data_offset: le64(buf, 128),
        data_size: le64(buf, 136),
        super_offset: le64(buf, 144),
        recovery_offset: le64(buf, 152),
        dev_number: le32(buf, 160),
        cnt_corrected_read: le32(buf, 164),
        device_uuid: arr(buf, 168),
        devflags: buf[184],
        bblog_shift: buf[185],
        bblog_size: le16(buf, 186),
        bblog_offset: le32(buf, 188),
        utime: le64(buf, 192),
        events: le64(buf, 200),
        resync_offset: le64(buf, 208),
        sb_csum: le32(buf, CSUM_OFFSET),
        max_dev,
        pad3: arr(buf, 224),
        dev_roles,
    };
    Ok(Some(Decoded { sb, expected_csum }))
}

/// Strict parse: `Ok(None)` without magic, `Err` on bad version/size/checksum.
pub fn parse(buf: &[u8]) -> Result<Option<Superblock>, SbError> {
    match decode(buf)? {
        None => Ok(None),
        Some(d) if d.checksum_ok() => Ok(Some(d.sb)),
        Some(d) => Err(SbError::BadChecksum {
            stored: d.sb.sb_csum,
            expected: d.expected_csum,
        }),
    }
}

impl Superblock {
    /// Serialize to a zero-padded 4096-byte block with a freshly computed checksum
    /// (the `sb_csum` field of `self` is ignored). `dev_roles` must have `max_dev` entries.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.encode_raw();
        let c = checksum(&b).expect("encode keeps max_dev within limits");
        b[CSUM_OFFSET..CSUM_OFFSET + 4].copy_from_slice(&c.to_le_bytes());
        b
    }

    /// Serialize exactly as the fields say, including `sb_csum` (tests, corruption cases).
    pub fn encode_raw(&self) -> Vec<u8> {
        assert!(self.max_dev <= MAX_DEV_LIMIT, "max_dev out of range");
        assert_eq!(self.dev_roles.len(), self.max_dev as usize, "dev_roles");
        let mut b = vec![0u8; SB_BYTES];
        let mut put = |o: usize, v: &[u8]| b[o..o + v.len()].copy_from_slice(v);
        put(0, &MD_SB_MAGIC.to_le_bytes());
        put(4, &1u32.to_le_bytes());
        put(8, &self.feature_map.to_le_bytes());
        put(12, &self.pad0.to_le_bytes());
        put(16, &self.set_uuid.0);
        put(32, &self.set_name);
        put(64, &self.ctime.to_le_bytes());
        put(72, &self.level.to_le_bytes());
        put(76, &self.layout.to_le_bytes());
        put(80, &self.size.to_le_bytes());
        put(88, &self.chunksize.to_le_bytes());
        put(92, &self.raid_disks.to_le_bytes());
        put(96, &self.bitmap_offset.to_le_bytes());
        put(100, &self.new_level.to_le_bytes());
        put(104, &self.reshape_position.to_le_bytes());
        put(112, &self.delta_disks.to_le_bytes());
        put(116, &self.new_layout.to_le_bytes());
        put(120, &self.new_chunk.to_le_bytes());
        put(124, &self.new_offset.to_le_bytes());
        put(128, &self.data_offset.to_le_bytes());
        put(136, &self.data_size.to_le_bytes());
        put(144, &self.super_offset.to_le_bytes());
        put(152, &self.recovery_offset.to_le_bytes());
        put(160, &self.dev_number.to_le_bytes());
        put(164, &self.cnt_corrected_read.to_le_bytes());
        put(168, &self.device_uuid);
        put(184, &[self.devflags, self.bblog_shift]);
        put(186, &self.bblog_size.to_le_bytes());
        put(188, &self.bblog_offset.to_le_bytes());
        put(192, &self.utime.to_le_bytes());
        put(200, &self.events.to_le_bytes());
        put(208, &self.resync_offset.to_le_bytes());
        put(CSUM_OFFSET, &self.sb_csum.to_le_bytes());
        put(220, &self.max_dev.to_le_bytes());
        put(224, &self.pad3);
        for (i, r) in self.dev_roles.iter().enumerate() {
            put(SB_FIXED + 2 * i, &r.to_le_bytes());
        }
        b
    }

    pub fn name(&self) -> String {
        name_str(&self.set_name)
    }

    /// Seconds part of ctime/utime (low 40 bits).
    pub fn ctime_secs(&self) -> u64 {
        self.ctime & 0xff_ffff_ffff
    }
    pub fn utime_secs(&self) -> u64 {
        self.utime & 0xff_ffff_ffff
    }

    /// This device's role: `Some(slot)` for an active member, `None` for spare/faulty/journal or
    /// a dev_number past `max_dev` (the kernel then treats the device as a spare).
    pub fn role(&self) -> Option<u32> {
        self.dev_roles
            .get(self.dev_number as usize)
            .filter(|r| **r < role::MAX)
            .map(|r| u32::from(*r))
    }

    /// Text for `Device Role :`, as mdadm prints it.
    pub fn role_text(&self) -> String {
        match self.dev_roles.get(self.dev_number as usize) {
            None | Some(&role::SPARE) => "spare".into(),
            Some(&role::FAULTY) => "faulty".into(),
            Some(&role::JOURNAL) => "Journal".into(),
            Some(r) => format!("Active device {r}"),
        }
    }

    /// mdadm's `Array State` string: one char per raid slot, 'A' when some device holds that
    /// role in this superblock's table, '.' when none (roles table only; no replacement/faulty
    /// detail beyond that).
    pub fn array_state(&self) -> String {
        // raid_disks comes from disk: never trust it for an allocation size (found by fuzzing).
        (0..self.raid_disks.min(MAX_DEV_LIMIT))
            .map(|slot| {
                if self.dev_roles.iter().any(|r| u32::from(*r) == slot) {
                    'A'
                } else {
                    '.'
                }
            })
            .collect()
    }

    pub fn clean(&self) -> bool {
        self.resync_offset == RESYNC_CLEAN
    }

    /// Unknown feature bits the kernel would reject.
    pub fn unknown_features(&self) -> u32 {
        self.feature_map & !feature::ALL
    }
}

/// What to write for one member of a new RAID0 (MD.md §1.2, §1.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raid0Spec {
    pub set_uuid: ArrayUuid,
    /// Full `set_name` text, e.g. "any:data" (≤ 31 bytes so a NUL remains).
    pub set_name: String,
    /// Seconds since the epoch (written to ctime and utime).
    pub ctime: u64,
    pub chunk_sectors: u32,
    pub raid_disks: u32,
    pub data_offset: u64,
    /// Set feature 0x1000 with layout 1 (kernels ≥ 5.4).
    pub raid0_layout_feature: bool,
}

impl Raid0Spec {
    /// The superblock for member `index` (role = dev_number = index) of `dev_sectors`.
    pub fn member(&self, index: u32, dev_sectors: u64, device_uuid: [u8; 16]) -> Superblock {
        let mut set_name = [0u8; 32];
        let n = self.set_name.as_bytes();
        let len = n.len().min(31);
        set_name[..len].copy_from_slice(&n[..len]);
        let max_dev = MDADM_MAX_DEV.max(self.raid_disks).min(MAX_DEV_LIMIT);
        let mut dev_roles = vec![role::SPARE; max_dev as usize];
        for (i, r) in dev_roles
            .iter_mut()
            .enumerate()
            .take(self.raid_disks as usize)
        {
            *r = i as u16;
        }
        Superblock {
            feature_map: if self.raid0_layout_feature {
                feature::RAID0_LAYOUT
            } else {
                0
            },
            pad0: 0,
            set_uuid: self.set_uuid,
            set_name,
            ctime: self.ctime & 0xff_ffff_ffff,
            level: 0,
            layout: RAID0_ORIG_LAYOUT,
            size: 0,
            chunksize: self.chunk_sectors,
            raid_disks: self.raid_disks,
            bitmap_offset: 0,
            new_level: 0,
            reshape_position: 0,
            delta_disks: 0,
            new_layout: 0,
            new_chunk: 0,
            new_offset: 0,
            data_offset: self.data_offset,
            data_size: dev_sectors.saturating_sub(self.data_offset),
            super_offset: 8,
            recovery_offset: 0,
            dev_number: index,
            cnt_corrected_read: 0,
            device_uuid,
            devflags: 0,
            bblog_shift: 0,
            bblog_size: 0,
            bblog_offset: 0,
            utime: self.ctime & 0xff_ffff_ffff,
            events: 0,
            resync_offset: RESYNC_CLEAN,
            sb_csum: 0,
            max_dev,
            pad3: [0; 32],
            dev_roles,
        }
    }
}

/// A stale 0.90 superblock (host-endian; we accept either byte order and say which).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V090Info {
    pub big_endian: bool,
    pub major: u32,
    pub minor: u32,
    /// UUID words in the mdadm order (set_uuid0..3).
    pub uuid: String,
    pub level: i32,
    pub raid_disks: u32,
    pub ctime: u32,
}

/// 0.90 superblock magic (same value as v1).
pub fn decode_v090(buf: &[u8]) -> Option<V090Info> {
    if buf.len() < 64 {
        return None;
    }
    type Rd = fn(&[u8], usize) -> u32;
    let (big, rd): (bool, Rd) = if le32(buf, 0) == MD_SB_MAGIC {
        (false, le32)
    } else if u32::from_be_bytes(arr(buf, 0)) == MD_SB_MAGIC {
        (true, |b, o| u32::from_be_bytes(arr(b, o)))
    } else {
        return None;
    };
    let major = rd(buf, 4);
    if major != 0 {
        return None;
    }
    Some(V090Info {
        big_endian: big,
        major,
        minor: rd(buf, 8),
        uuid: format!(
            "{:08x}:{:08x}:{:08x}:{:08x}",
            rd(buf, 20),
            rd(buf, 52),
            rd(buf, 56),
            rd(buf, 60)
        ),
        level: rd(buf, 28) as i32,
        raid_disks: rd(buf, 40),
        ctime: rd(buf, 24),
    })
}

/// What sits at one md superblock location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // a handful per device; boxing buys nothing
pub enum FoundKind {
    V1 {
        minor: Minor,
        decoded: Result<Decoded, SbError>,
    },
    V090(Box<V090Info>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Byte offset of the superblock on the device.
    pub offset: u64,
    pub kind: FoundKind,
}

impl Found {
    pub fn version(&self) -> String {
        match &self.kind {
            FoundKind::V1 { minor, .. } => minor.to_string(),
            FoundKind::V090(_) => "0.90".into(),
        }
    }
    /// A v1 superblock whose checksum, position and version are right.
    pub fn valid_v1(&self) -> Option<&Superblock> {
        match &self.kind {
            FoundKind::V1 {
                minor,
                decoded: Ok(d),
            } if d.checksum_ok() && d.sb.super_offset * 512 == self.offset => {
                let _ = minor;
                Some(&d.sb)
            }
            _ => None,
        }
    }
}

/// Every byte range an md superblock of any version may occupy on a device of `dev_bytes`
/// (offset, length), in the order 1.1, 1.2, 1.0, 0.90. Used by [`scan`] and by the wipe set.
pub fn md_locations(dev_bytes: u64) -> Vec<(String, u64, u64)> {
    let sectors = dev_bytes / 512;
    let mut v = Vec::new();
    for m in [Minor::V1_1, Minor::V1_2, Minor::V1_0] {
        if let Some(s) = m.sb_start(sectors) {
            v.push((m.to_string(), s * 512, SB_BYTES as u64));
        }
    }
    if let Some(o) = v090_offset(dev_bytes) {
        if o + SB_BYTES as u64 <= dev_bytes {
            v.push(("0.90".into(), o, SB_BYTES as u64));
        }
    }
    v
}

/// Read every md superblock location of a device or image of `dev_bytes` and report what is
/// there. Read-only. I/O errors are returned (naming nothing: the caller adds the path).
pub fn scan<R: Read + Seek>(r: &mut R, dev_bytes: u64) -> std::io::Result<Vec<Found>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; SB_BYTES];
    for (ver, off, len) in md_locations(dev_bytes) {
        r.seek(SeekFrom::Start(off))?;
        r.read_exact(&mut buf[..len as usize])?;
        if ver == "0.90" {
            if let Some(info) = decode_v090(&buf) {
                out.push(Found {
                    offset: off,
                    kind: FoundKind::V090(Box::new(info)),
                });
            }
            continue;
        }
        let minor = match ver.as_str() {
            "1.0" => Minor::V1_0,
            "1.1" => Minor::V1_1,
            _ => Minor::V1_2,
        };
        match decode(&buf) {
            Ok(None) => {}
            Ok(Some(d)) => out.push(Found {
                offset: off,
                kind: FoundKind::V1 {
                    minor,
                    decoded: Ok(d),
                },
            }),
            Err(SbError::BadVersion(0)) => {
                // A 0.90-style header at a v1 location: not ours, ignore.
            }
            Err(e) => out.push(Found {
                offset: off,
                kind: FoundKind::V1 {
                    minor,
                    decoded: Err(e),
                },
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    /// The MD.md §6 array: 2 × 256 MiB members, 512K chunk, data offset 4096.
    pub(crate) fn md6_spec() -> Raid0Spec {
        Raid0Spec {
            set_uuid: ArrayUuid([
                0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55, 0x55,
                0x55, 0x55,
            ]),
            set_name: "any:data".into(),
            ctime: 1_700_000_000,
            chunk_sectors: 1024,
            raid_disks: 2,
            data_offset: 4096,
            raid0_layout_feature: true,
        }
    }

    const MEMBER_SECTORS: u64 = 256 * 2048;

    #[test]
    fn known_vector_bytes() {
        let sb = md6_spec().member(1, MEMBER_SECTORS, [0xab; 16]);
        let b = sb.encode();
        assert_eq!(b.len(), 4096);
        assert_eq!(&b[0..4], &[0xfc, 0x4e, 0x2b, 0xa9]);
        assert_eq!(&b[4..8], &[1, 0, 0, 0]);
        assert_eq!(&b[8..12], &[0, 0x10, 0, 0]); // feature 0x1000
        assert_eq!(&b[32..40], b"any:data");
        assert_eq!(&b[88..92], &[0, 4, 0, 0]); // chunk 0x400
        assert_eq!(&b[92..96], &[2, 0, 0, 0]);
        assert_eq!(&b[128..136], &0x1000u64.to_le_bytes());
        assert_eq!(&b[136..144], &0x7f000u64.to_le_bytes()); // as mdadm wrote in the VM
        assert_eq!(&b[144..152], &8u64.to_le_bytes());
        assert_eq!(&b[160..164], &[1, 0, 0, 0]);
        assert_eq!(&b[208..216], &[0xff; 8]);
        assert_eq!(&b[220..224], &[128, 0, 0, 0]);
        assert_eq!(&b[256..262], &[0, 0, 1, 0, 0xff, 0xff]); // roles 0,1,ffff
        assert!(b[256 + 256..].iter().all(|x| *x == 0));
        // Hand-computed checksum: sum of le32 words with csum = 0, folded.
        let mut sum: u64 = 0;
        for i in (0..512).step_by(4) {
            if i != 216 {
                sum += u64::from(u32::from_le_bytes(b[i..i + 4].try_into().unwrap()));
            }
        }
        let folded = ((sum & 0xffff_ffff) + (sum >> 32)) as u32;
        assert_eq!(&b[216..220], &folded.to_le_bytes());
        let p = parse(&b).unwrap().unwrap();
        assert_eq!(p.role(), Some(1));
        assert_eq!(p.array_state(), "AA");
        assert_eq!(p.name(), "any:data");
        assert_eq!(p.set_uuid.mdadm(), "11111111:22223333:44445555:55555555");
        assert_eq!(p.set_uuid.dashed(), "11111111-2222-3333-4444-555555555555");
        assert_eq!(
            p.set_uuid.map_words(),
            "11111111:33332222:55554444:55555555"
        );
    }

    #[test]
    fn fixed_checksum_vector() {
        // A fully hand-built minimal buffer: magic, major 1, max_dev 0 → 256 bytes summed.
        let mut b = vec![0u8; 4096];
        b[0..4].copy_from_slice(&MD_SB_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        // 0xa92b4efc + 1 = 0xa92b4efd
        assert_eq!(checksum(&b).unwrap(), 0xa92b_4efd);
        // Carry folding: two words of 0xffffffff → 0x1_ffff_fffe → fffffffe + 1.
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        let sum: u64 = 0xa92b_4efd + 2 * 0xffff_ffff;
        assert_eq!(
            checksum(&b).unwrap(),
            ((sum & 0xffff_ffff) + (sum >> 32)) as u32
        );
    }

    #[test]
    fn odd_max_dev_adds_trailing_le16() {
        let mut sb = md6_spec().member(0, MEMBER_SECTORS, [1; 16]);
        sb.max_dev = 3;
        sb.dev_roles = vec![0, 1, 0xffff];
        let b = sb.encode();
        // len = 262, the last le16 (0xffff) is included; changing byte 262 must not matter.
        let c = checksum(&b).unwrap();
        let mut b2 = b.clone();
        b2[262] = 0x55;
        assert_eq!(checksum(&b2).unwrap(), c);
        let mut b3 = b.clone();
        b3[260] ^= 1; // inside the trailing le16
        assert_ne!(checksum(&b3).unwrap(), c);
        assert!(parse(&b).unwrap().is_some());
    }

    #[test]
    fn no_magic_is_none_and_bad_version_is_error() {
        assert_eq!(parse(&[0u8; 4096]).unwrap(), None);
        let mut b = md6_spec().member(0, MEMBER_SECTORS, [1; 16]).encode();
        b[4] = 2;
        assert_eq!(parse(&b), Err(SbError::BadVersion(2)));
        let mut b = md6_spec().member(0, MEMBER_SECTORS, [1; 16]).encode();
        b[220..224].copy_from_slice(&5000u32.to_le_bytes());
        assert_eq!(parse(&b), Err(SbError::MaxDev(5000)));
        assert_eq!(parse(&b[..100]), Err(SbError::TooShort(100)));
    }

    #[test]
    fn bad_checksum_reports_expected() {
        let mut b = md6_spec().member(0, MEMBER_SECTORS, [1; 16]).encode();
        let good = parse(&b).unwrap().unwrap().sb_csum;
        b[40] ^= 0x01;
        let d = decode(&b).unwrap().unwrap();
        assert!(!d.checksum_ok());
        assert_eq!(d.sb.sb_csum, good);
        match parse(&b) {
            Err(SbError::BadChecksum { stored, expected }) => {
                assert_eq!(stored, good);
                assert_eq!(expected, d.expected_csum);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scan_finds_every_version() {
        let dev: u64 = 8 << 20; // 8 MiB image
        let mut img = vec![0u8; dev as usize];
        // 1.2 at 4096
        let sb = md6_spec().member(0, dev / 512, [1; 16]);
        img[4096..8192].copy_from_slice(&sb.encode());
        // stale 1.1 at 0 (another array)
        let mut other = md6_spec();
        other.set_uuid = ArrayUuid([9; 16]);
        let mut s11 = other.member(1, dev / 512, [2; 16]);
        s11.super_offset = 0;
        img[0..4096].copy_from_slice(&s11.encode());
        // stale 1.0 near the end
        let o10 = (Minor::V1_0.sb_start(dev / 512).unwrap() * 512) as usize;
        let mut s10 = other.member(0, dev / 512, [3; 16]);
        s10.super_offset = o10 as u64 / 512;
        img[o10..o10 + 4096].copy_from_slice(&s10.encode());
        // stale 0.90, little-endian, at 64 KiB before the aligned end
        let o90 = v090_offset(dev).unwrap() as usize;
        assert_eq!(o90 as u64, dev - 65536);
        img[o90..o90 + 4].copy_from_slice(&MD_SB_MAGIC.to_le_bytes());
        img[o90 + 8..o90 + 12].copy_from_slice(&90u32.to_le_bytes());
        img[o90 + 20..o90 + 24].copy_from_slice(&0xdeadbeefu32.to_le_bytes());
        img[o90 + 40..o90 + 44].copy_from_slice(&3u32.to_le_bytes());
        let found = scan(&mut Cursor::new(&img), dev).unwrap();
        let versions: Vec<String> = found.iter().map(Found::version).collect();
        assert_eq!(versions, vec!["1.1", "1.2", "1.0", "0.90"]);
        assert!(found[1].valid_v1().is_some());
        assert!(found[0].valid_v1().is_some());
        match &found[3].kind {
            FoundKind::V090(i) => {
                assert!(!i.big_endian);
                assert_eq!(i.raid_disks, 3);
                assert!(i.uuid.starts_with("deadbeef:"));
            }
            k => panic!("{k:?}"),
        }
        // An image with nothing: nothing found.
        let blank = vec![0u8; dev as usize];
        assert!(scan(&mut Cursor::new(&blank), dev).unwrap().is_empty());
    }

    #[test]
    fn hostile_raid_disks_is_bounded() {
        // Regression (cargo fuzz: OOM): raid_disks = 0xffffffff must not size an allocation.
        let mut sb = md6_spec().member(0, MEMBER_SECTORS, [1; 16]);
        sb.raid_disks = u32::MAX;
        let p = parse(&sb.encode()).unwrap().unwrap();
        assert_eq!(p.array_state().len(), MAX_DEV_LIMIT as usize);
    }

    #[test]
    fn big_endian_090_detected() {
        let mut b = vec![0u8; 4096];
        b[0..4].copy_from_slice(&MD_SB_MAGIC.to_be_bytes());
        b[40..44].copy_from_slice(&2u32.to_be_bytes());
        let i = decode_v090(&b).unwrap();
        assert!(i.big_endian);
        assert_eq!(i.raid_disks, 2);
    }

    #[test]
    fn uuid_parse_forms() {
        let u = md6_spec().set_uuid;
        assert_eq!(ArrayUuid::parse(&u.mdadm()), Some(u));
        assert_eq!(ArrayUuid::parse(&u.dashed()), Some(u));
        assert_eq!(ArrayUuid::parse("zz"), None);
    }

    fn arb_sb() -> impl Strategy<Value = Superblock> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            "[a-z0-9:_]{0,31}",
            0u32..300,
            any::<(u64, i32, u32, u64, u32, u32)>(),
            any::<(u64, u64, u64, u32, u64, u64)>(),
            any::<(u8, u16, u32, u64)>(),
        )
            .prop_map(|(su, du, name, max_dev, a, b, c)| {
                let mut set_name = [0u8; 32];
                set_name[..name.len()].copy_from_slice(name.as_bytes());
                Superblock {
                    feature_map: a.2 & feature::ALL,
                    pad0: 0,
                    set_uuid: ArrayUuid(su),
                    set_name,
                    ctime: a.0,
                    level: a.1,
                    layout: a.2,
                    size: a.3,
                    chunksize: a.4,
                    raid_disks: a.5,
                    bitmap_offset: 0,
                    new_level: 0,
                    reshape_position: b.4,
                    delta_disks: 0,
                    new_layout: 0,
                    new_chunk: 0,
                    new_offset: 0,
                    data_offset: b.0,
                    data_size: b.1,
                    super_offset: b.2,
                    recovery_offset: 0,
                    dev_number: b.3,
                    cnt_corrected_read: 0,
                    device_uuid: du,
                    devflags: c.0,
                    bblog_shift: 0,
                    bblog_size: c.1,
                    bblog_offset: c.2,
                    utime: c.3,
                    events: b.5,
                    resync_offset: u64::MAX,
                    sb_csum: 0,
                    max_dev,
                    pad3: [0; 32],
                    dev_roles: (0..max_dev).map(|i| (i * 7 % 0x10000) as u16).collect(),
                }
            })
    }

    proptest! {
        #[test]
        fn roundtrip(sb in arb_sb()) {
            let b = sb.encode();
            let mut p = parse(&b).unwrap().unwrap();
            let csum = p.sb_csum;
            p.sb_csum = 0;
            prop_assert_eq!(&p, &sb);
            p.sb_csum = csum;
            prop_assert_eq!(p.encode(), b);
        }

        #[test]
        fn flipped_byte_breaks_checksum(sb in arb_sb(), pos in 4usize..512, bit in 0u8..8) {
            let b = sb.encode();
            let len = SB_FIXED + 2 * sb.max_dev as usize;
            let pos = pos % len;
            prop_assume!(pos >= 8); // keep magic and major intact
            prop_assume!(!(220..224).contains(&pos)); // max_dev changes the length
            let mut c = b.clone();
            c[pos] ^= 1 << bit;
            match parse(&c) {
                Err(SbError::BadChecksum { .. }) => {}
                other => prop_assert!(false, "pos {} gave {:?}", pos, other),
            }
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..4200), magic in any::<bool>()) {
            let mut data = data;
            if magic && data.len() >= 8 {
                data[0..4].copy_from_slice(&MD_SB_MAGIC.to_le_bytes());
                data[4..8].copy_from_slice(&1u32.to_le_bytes());
            }
            let _ = decode(&data);
            let _ = parse(&data);
            let _ = decode_v090(&data);
        }
    }
}
