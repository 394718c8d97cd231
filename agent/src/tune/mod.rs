//! Tuning: knobs as data (target, value, reason, where persisted), computed by a pure function
//! of host facts and profile overrides ([`knobs::compute`]), rendered into udev/sysctl/database/
//! systemd files ([`render`]), and applied read-compare-write ([`apply`]). Plus `dbhost bench`
//! ([`bench`]), the O_DIRECT benchmark that shows what the array delivers. Owner: issue 6.

pub mod apply;
pub mod bench;
pub mod facts;
pub mod knobs;
pub mod render;

pub use apply::{apply, observe, Outcome, TuneReport};
pub use facts::{gather, DiskCaps, Engine, GatherHints, MdFacts, MemberFacts, TuneFacts};
pub use knobs::{compute, Knob, Overrides, Target, TuneSet};

#[cfg(test)]
mod tests;
