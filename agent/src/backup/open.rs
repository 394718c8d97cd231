//! From a profile's `[backup]` (and flags) to an opened destination on this host: the
//! environment, the DMI platform (managed identity only on Azure), the IMDS endpoint, the age
//! keys. Shared by the `backup`/`restore` commands and `apply`'s backup steps.

use super::codec;
use super::dest::{self, Destination, OpenCtx, Store};
use crate::host::Host;
use crate::profile::backup::Backup;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The destination a `[backup]` section names.
pub fn destination(b: &Backup) -> Result<Destination> {
    let mut d = Destination::parse(&b.destination)?;
    d.endpoint = b.endpoint.clone();
    d.region = b.region.clone();
    d.account = b.account.clone();
    d.credentials_file = b.credentials_file.as_ref().map(PathBuf::from);
    d.managed_identity = b.managed_identity;
    Ok(d)
}

/// Open `d` on this host (credentials from the environment and the credentials file).
pub fn store(host: &Host, d: &Destination, imds_endpoint: Option<&str>) -> Result<Store> {
    let env = |k: &str| std::env::var(k).ok();
    let imds = imds_endpoint
        .map(str::to_string)
        .or_else(|| {
            std::env::var(crate::detect::IMDS_ENDPOINT_ENV)
                .ok()
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| crate::detect::IMDS_DEFAULT_ENDPOINT.to_string());
    let on_azure = d.managed_identity
        && crate::detect::platform(host) == crate::detect::model::Platform::Azure;
    dest::open(
        d,
        &OpenCtx {
            host,
            env: &env,
            on_azure,
            imds_endpoint: imds,
        },
    )
}

/// The age identities in a key file (mode 0600 enforced); none without a file.
pub fn identities(host: &Host, path: Option<&Path>) -> Result<Vec<age::x25519::Identity>> {
    let Some(p) = path else {
        return Ok(Vec::new());
    };
    let f = host.path(p);
    dest::check_private(&f)?;
    let text = std::fs::read_to_string(&f)
        .with_context(|| format!("reading identity file {}", p.display()))?;
    codec::parse_identities(&text, &p.display().to_string())
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
