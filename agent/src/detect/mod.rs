//! Read-only detection: platform, block-device inventory, signatures, eligibility.
//! Owner: issue 2.

pub mod model;

pub use model::*;
