//! `dbhost backup ...`, `dbhost restore`: argument types and printing; the work is in
//! `crate::backup`.

use super::Ctx;
use crate::backup::dest::{self, Destination, OpenCtx, Store};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Where backups are (flags override the profile's `[backup]` section).
#[derive(Debug, Clone, Default, Args)]
pub struct DestArgs {
    /// Destination URL: azure://CONTAINER/PREFIX, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or
    /// file:///DIR.
    #[arg(long = "to", visible_alias = "from", value_name = "URL")]
    pub url: Option<String>,
    /// Service endpoint (Azurite http://HOST:10000/ACCOUNT, an S3-compatible server).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// S3 region.
    #[arg(long)]
    pub region: Option<String>,
    /// Azure storage account.
    #[arg(long)]
    pub account: Option<String>,
    /// KEY=VALUE file with the secrets (mode 0600): AZURE_STORAGE_ACCOUNT_KEY, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, ...
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
    /// Azure: authenticate with the VM's managed identity (IMDS; Azure VMs only).
    #[arg(long)]
    pub managed_identity: bool,
}

impl DestArgs {
    /// The destination from these flags over `base` (the profile's, when there is one).
    pub fn resolve(&self, base: Option<Destination>) -> Result<Destination> {
        let mut d =
            match (&self.url, base) {
                (Some(u), _) => Destination::parse(u)?,
                (None, Some(b)) => b,
                (None, None) => return Err(crate::exit::Failure::Usage(
                    "no backup destination: pass --to URL or a profile with a [backup] destination"
                        .into(),
                )
                .into()),
            };
        if let Some(e) = &self.endpoint {
            d.endpoint = Some(e.clone());
        }
        if let Some(r) = &self.region {
            d.region = Some(r.clone());
        }
        if let Some(a) = &self.account {
            d.account = Some(a.clone());
        }
        if let Some(f) = &self.credentials_file {
            d.credentials_file = Some(f.clone());
        }
        d.managed_identity |= self.managed_identity;
        Ok(d)
    }
}

/// Open `d` on this host: environment, DMI platform, IMDS endpoint.
pub fn open_destination(ctx: &Ctx, d: &Destination, imds_endpoint: Option<&str>) -> Result<Store> {
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
        && crate::detect::platform(&ctx.host) == crate::detect::model::Platform::Azure;
    dest::open(
        d,
        &OpenCtx {
            host: &ctx.host,
            env: &env,
            on_azure,
            imds_endpoint: imds,
        },
    )
}
