//! `dbhost md ...` and `dbhost assemble`.

use super::{Ctx, OutputFormat};
use crate::exit::Failure;
use crate::host::RealExec;
use crate::md::array::{self, AssembleOptions, AssembleReport, Examined, Outcome};
use crate::md::boot::{self, BootUnitOptions};
use crate::md::model::{self, ArrayName, CreateRequest};
use crate::md::superblock::Superblock;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum MdCmd {
    /// Print the md superblock(s) of a device or image file (like mdadm --examine), including
    /// stale 0.90/1.0/1.1 superblocks. Read-only.
    Examine {
        /// Block device or image file.
        device: PathBuf,
    },
    /// Create a RAID-0 over blank disks (v1.2 superblocks written by dbhost, no mdadm).
    /// Idempotent: members that already form this array are just assembled.
    Create(CreateArgs),
    /// Assemble every complete array found (same as `dbhost assemble`).
    Assemble(AssembleArgs),
    /// Stop an array: NAME, /dev/md/NAME, mdN or /dev/mdN.
    Stop {
        /// The array to stop.
        array: String,
    },
    /// Install and enable the boot-time assembly unit (dbhost-assemble.service).
    BootUnit(BootUnitArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Array name (stored as "any:NAME", so the array is /dev/md/NAME on every host).
    #[arg(long)]
    pub name: String,
    /// Chunk size (e.g. 512K, 64K, 1M); a multiple of the members' logical block size.
    #[arg(long, default_value = "512K")]
    pub chunk: String,
    /// Clear disks that are not blank (old filesystems, partition tables, md superblocks).
    #[arg(long)]
    pub wipe: bool,
    /// Member devices in role order (prefer /dev/disk/by-id/... paths).
    #[arg(required = true, num_args = 2..)]
    pub members: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AssembleArgs {
    /// Wait up to this long for members of incomplete or expected arrays (e.g. 90s, 2m).
    #[arg(long, default_value = "0s")]
    pub wait: String,
    /// An array name that must come up (repeatable); missing → exit 3.
    #[arg(long)]
    pub expect: Vec<String>,
}

#[derive(Debug, Args)]
pub struct BootUnitArgs {
    /// Path of the installed dbhost binary the unit runs.
    #[arg(long, default_value = "/usr/local/sbin/dbhost")]
    pub binary: PathBuf,
    /// How long the unit waits for member devices.
    #[arg(long, default_value = "90s")]
    pub wait: String,
    /// Arrays the unit expects (repeatable).
    #[arg(long)]
    pub expect: Vec<String>,
}

fn usage(m: String) -> anyhow::Error {
    Failure::Usage(m).into()
}

pub fn run(ctx: &Ctx, cmd: MdCmd) -> anyhow::Result<i32> {
    match cmd {
        MdCmd::Examine { device } => run_examine(ctx, device),
        MdCmd::Create(a) => run_create(ctx, a),
        MdCmd::Assemble(a) => run_assemble(ctx, a),
        MdCmd::Stop { array } => {
            ctx.require_live("md stop")?;
            let o = array::stop(&ctx.host, &array)?;
            print_outcome(ctx, "stop", &o)?;
            Ok(crate::exit::OK)
        }
        MdCmd::BootUnit(a) => {
            let wait = model::parse_duration(&a.wait).map_err(usage)?;
            let expect = a
                .expect
                .iter()
                .map(|e| ArrayName::new(e).map_err(usage))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let o = boot::install_boot_unit(
                &ctx.host,
                &RealExec,
                &BootUnitOptions {
                    binary: a.binary,
                    wait,
                    expect,
                },
            )?;
            print_outcome(ctx, "boot-unit", &o)?;
            Ok(crate::exit::OK)
        }
    }
}

fn print_outcome<T: serde::Serialize + std::fmt::Debug>(
    ctx: &Ctx,
    what: &str,
    o: &Outcome<T>,
) -> anyhow::Result<()> {
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&serde_json::json!({
            "command": what, "changed": o.changed(), "result": o,
        })),
        OutputFormat::Text => {
            let v = serde_json::to_value(o.value())?;
            let shown = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            crate::outln!(
                "{what}: {} {shown}",
                if o.changed() {
                    "changed:"
                } else {
                    "unchanged:"
                }
            );
            Ok(())
        }
    }
}

fn run_create(ctx: &Ctx, a: CreateArgs) -> anyhow::Result<i32> {
    ctx.require_live("md create")?;
    let req = CreateRequest {
        name: array::array_name(&a.name)?,
        chunk_bytes: model::parse_size(&a.chunk).map_err(usage)?,
        members: a.members,
        wipe: a.wipe,
    };
    let o = array::create(&ctx.host, &RealExec, &req)?;
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&serde_json::json!({
            "command": "md create", "changed": o.changed(), "array": o.value(),
        }))?,
        OutputFormat::Text => {
            let r = o.value();
            crate::outln!(
                "{} array {} ({}) as {} -> {}: members {}",
                if o.changed() {
                    "created/started"
                } else {
                    "unchanged:"
                },
                r.name,
                r.uuid,
                r.link.display(),
                r.devnm,
                r.members.join(" ")
            );
        }
    }
    Ok(crate::exit::OK)
}

pub fn run_assemble(ctx: &Ctx, a: AssembleArgs) -> anyhow::Result<i32> {
    ctx.require_live("assemble")?;
    let opts = AssembleOptions {
        wait: model::parse_duration(&a.wait).map_err(usage)?,
        expect: a.expect,
    };
    let rep = array::assemble_all(&ctx.host, &RealExec, &opts)?;
    print_assemble(ctx.output, &rep)?;
    Ok(rep.exit_code())
}

fn print_assemble(fmt: OutputFormat, rep: &AssembleReport) -> anyhow::Result<()> {
    if fmt == OutputFormat::Json {
        return super::output::print_json(rep);
    }
    if rep.arrays.is_empty() {
        crate::outln!("no md arrays found");
    }
    for a in &rep.arrays {
        let uuid = a.uuid.map(|u| u.mdadm()).unwrap_or_default();
        crate::outln!(
            "{}: {} {}{}",
            a.name,
            a.result.replace('_', " "),
            a.devnm
                .as_deref()
                .map(|d| format!("({d}) "))
                .unwrap_or_default(),
            uuid
        );
        if !a.devices.is_empty() {
            crate::outln!("  devices: {}", a.devices.join(" "));
        }
        if !a.missing_roles.is_empty() {
            crate::outln!(
                "  present roles: {:?}  missing roles: {:?}",
                a.present_roles,
                a.missing_roles
            );
        }
        if let Some(d) = &a.detail {
            crate::outln!("  {d}");
        }
    }
    for s in &rep.stale {
        crate::outln!("ignored: {s}");
    }
    for u in &rep.unreadable {
        crate::errln!("dbhost: warning: could not read {u}");
    }
    Ok(())
}

fn run_examine(ctx: &Ctx, device: PathBuf) -> anyhow::Result<i32> {
    let path = if device.is_absolute() && ctx.replay {
        ctx.host.path(&device)
    } else {
        device
    };
    let x = array::examine(&path)?;
    match ctx.output {
        OutputFormat::Json => super::output::print_json(&x)?,
        OutputFormat::Text => crate::out!("{}", examine_text(&x)),
    }
    // "No md superblock detected" is an answer, not an error (mdadm exits 1 there).
    Ok(crate::exit::OK)
}

fn ctime_text(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = crate::civil::utc(secs as i64);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

fn level_text(l: i32) -> String {
    match l {
        -1 => "linear".into(),
        -4 => "multipath".into(),
        n => format!("raid{n}"),
    }
}

fn sectors_text(s: u64) -> String {
    let mib = s as f64 / 2048.0;
    format!("{s} sectors ({mib:.2} MiB)")
}

/// mdadm --examine-like text (pure, tested).
pub fn examine_text(x: &Examined) -> String {
    let mut o = format!("{}:\n", x.path);
    if x.superblocks.is_empty() {
        o.push_str("  No md superblock detected.\n");
        return o;
    }
    for s in &x.superblocks {
        let kv = |o: &mut String, k: &str, v: &str| o.push_str(&format!("{k:>16} : {v}\n"));
        if let Some(sb) = &s.superblock {
            push_v1(&mut o, s, sb, &kv);
        } else if let Some(v) = &s.v090 {
            kv(&mut o, "Magic", "a92b4efc");
            kv(
                &mut o,
                "Version",
                &format!(
                    "0.{:02} (STALE: old-format superblock at byte {})",
                    v.minor, s.offset_bytes
                ),
            );
            kv(&mut o, "UUID", &v.uuid);
            kv(&mut o, "Raid Level", &level_text(v.level));
            kv(&mut o, "Raid Devices", &v.raid_disks.to_string());
            if v.big_endian {
                kv(
                    &mut o,
                    "Byte Order",
                    "big-endian (written on another architecture)",
                );
            }
        } else {
            kv(&mut o, "Version", &s.version);
            kv(
                &mut o,
                "Status",
                &format!(
                    "DAMAGED at byte {}: {}",
                    s.offset_bytes,
                    s.error.as_deref().unwrap_or("?")
                ),
            );
        }
        o.push('\n');
    }
    o
}

fn push_v1(
    o: &mut String,
    s: &array::ExaminedSb,
    sb: &Superblock,
    kv: &dyn Fn(&mut String, &str, &str),
) {
    let primary = s.version == "1.2" && s.status == "ok";
    kv(o, "Magic", "a92b4efc");
    kv(o, "Version", &s.version);
    if !primary {
        kv(
            o,
            "Found At",
            &format!("byte {} ({})", s.offset_bytes, s.status),
        );
    }
    kv(o, "Feature Map", &format!("{:#x}", sb.feature_map));
    kv(o, "Array UUID", &sb.set_uuid.mdadm());
    kv(o, "Name", &sb.name());
    kv(o, "Creation Time", &ctime_text(sb.ctime_secs()));
    kv(o, "Raid Level", &level_text(sb.level));
    kv(o, "Raid Devices", &sb.raid_disks.to_string());
    kv(o, "Avail Dev Size", &sectors_text(sb.data_size));
    kv(o, "Data Offset", &format!("{} sectors", sb.data_offset));
    kv(o, "Super Offset", &format!("{} sectors", sb.super_offset));
    kv(o, "State", s.state.as_deref().unwrap_or("?"));
    kv(o, "Device UUID", &model_uuid(&sb.device_uuid));
    kv(o, "Update Time", &ctime_text(sb.utime_secs()));
    if sb.bblog_size > 0 {
        kv(
            o,
            "Bad Block Log",
            &format!(
                "{} entries available at offset {} sectors",
                u32::from(sb.bblog_size) * 64,
                sb.bblog_offset as i32
            ),
        );
    }
    let c = s.checksum.as_deref().unwrap_or("?");
    let e = s.checksum_expected.as_deref().unwrap_or("?");
    kv(
        o,
        "Checksum",
        &if c == e {
            format!("{c} - correct")
        } else {
            format!("{c} - expected {e}")
        },
    );
    kv(o, "Events", &sb.events.to_string());
    if sb.level == 0 && sb.feature_map & crate::md::superblock::feature::RAID0_LAYOUT != 0 {
        let l = match sb.layout {
            1 => "original".to_string(),
            2 => "alternate".to_string(),
            n => format!("unknown ({n})"),
        };
        kv(o, "Layout", &l);
    }
    kv(o, "Chunk Size", &format!("{}K", sb.chunksize / 2));
    kv(o, "Device Role", s.device_role.as_deref().unwrap_or("?"));
    kv(o, "Array State", s.array_state.as_deref().unwrap_or("?"));
    if let Some(err) = &s.error {
        kv(o, "Warning", err);
    }
    if sb.unknown_features() != 0 {
        kv(
            o,
            "Warning",
            &format!(
                "unknown feature bits {:#x}: the kernel will refuse this superblock",
                sb.unknown_features()
            ),
        );
    }
}

fn model_uuid(b: &[u8; 16]) -> String {
    crate::md::superblock::ArrayUuid(*b).mdadm()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::md::superblock::{ArrayUuid, Raid0Spec};
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn dates() {
        assert_eq!(ctime_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(ctime_text(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn examine_text_has_mdadm_fields() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("m.img");
        let size = 256u64 << 20;
        let mut f = std::fs::File::create(&p).unwrap();
        f.set_len(size).unwrap();
        let spec = Raid0Spec {
            set_uuid: ArrayUuid([0x11; 16]),
            set_name: "any:data".into(),
            ctime: 1_700_000_000,
            chunk_sectors: 1024,
            raid_disks: 2,
            data_offset: 4096,
            raid0_layout_feature: true,
        };
        f.seek(SeekFrom::Start(4096)).unwrap();
        f.write_all(&spec.member(1, size / 512, [2; 16]).encode())
            .unwrap();
        drop(f);
        let t = examine_text(&array::examine(&p).unwrap());
        for want in [
            "           Magic : a92b4efc\n",
            "         Version : 1.2\n",
            "     Feature Map : 0x1000\n",
            "      Array UUID : 11111111:11111111:11111111:11111111\n",
            "            Name : any:data\n",
            "      Raid Level : raid0\n",
            "    Raid Devices : 2\n",
            "  Avail Dev Size : 520192 sectors (254.00 MiB)\n",
            "     Data Offset : 4096 sectors\n",
            "    Super Offset : 8 sectors\n",
            "           State : clean\n",
            " - correct\n",
            "          Events : 0\n",
            "          Layout : original\n",
            "      Chunk Size : 512K\n",
            "     Device Role : Active device 1\n",
            "     Array State : AA\n",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        let empty = d.path().join("e.img");
        std::fs::File::create(&empty)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        assert!(examine_text(&array::examine(&empty).unwrap()).contains("No md superblock"));
    }
}
