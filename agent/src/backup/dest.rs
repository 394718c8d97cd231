//! Backup destinations: Azure Blob, S3 (and S3-compatible servers), GCS, a local directory —
//! all through `object_store` on dbhost's resolver and rustls.
//!
//! A destination is a URL (`azure://CONTAINER/PREFIX`, `s3://BUCKET/PREFIX`,
//! `gs://BUCKET/PREFIX`, `file:///DIR`) plus options (endpoint, region, account). Secrets never
//! live in the profile: they come from the environment or from a `KEY=VALUE` file the profile
//! names (the variables' usual names, so the same file can be a systemd `EnvironmentFile=`).
//! Azure may instead use the VM's managed identity through IMDS — only on a host whose DMI says
//! Azure, at the configurable IMDS endpoint.
//!
//! Each service's SDK would otherwise fall back to its metadata service when no credential is
//! given; dbhost refuses instead, naming the variables to set, so no cloud endpoint is ever
//! contacted by surprise.

use super::parts::{self, PartLimits};
use crate::host::Host;
use crate::net::dns::Resolver;
use anyhow::{anyhow, bail, Context, Result};
use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The object store service behind a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Azure,
    S3,
    Gcs,
    Dir,
}

impl Service {
    pub fn scheme(self) -> &'static str {
        match self {
            Service::Azure => "azure",
            Service::S3 => "s3",
            Service::Gcs => "gs",
            Service::Dir => "file",
        }
    }
    pub fn limits(self) -> &'static PartLimits {
        match self {
            Service::Azure => &parts::AZURE,
            Service::S3 => &parts::S3,
            Service::Gcs => &parts::GCS,
            Service::Dir => &parts::LOCAL,
        }
    }
}

/// Where backups go, without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub service: Service,
    /// Container (Azure) or bucket (S3, GCS); the directory for `file://`.
    pub container: String,
    /// Key prefix inside the container ("" for none), without leading or trailing '/'.
    pub prefix: String,
    /// Service endpoint override: Azurite (`http://HOST:10000/ACCOUNT`), an S3-compatible server,
    /// a sovereign cloud.
    pub endpoint: Option<String>,
    /// S3 region (default `AWS_REGION`, else us-east-1).
    pub region: Option<String>,
    /// Azure storage account (default `AZURE_STORAGE_ACCOUNT_NAME`).
    pub account: Option<String>,
    /// `KEY=VALUE` file with the secrets; must not be readable by group or others.
    pub credentials_file: Option<PathBuf>,
    /// Azure: take a token from the VM's managed identity (IMDS).
    pub managed_identity: bool,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.service {
            Service::Dir => write!(f, "file://{}", self.container)?,
            s => {
                write!(f, "{}://{}", s.scheme(), self.container)?;
                if !self.prefix.is_empty() {
                    write!(f, "/{}", self.prefix)?;
                }
            }
        }
        if let Some(e) = &self.endpoint {
            write!(f, " at {e}")?;
        }
        Ok(())
    }
}

impl Destination {
    /// Parse a destination URL; options are set afterwards from the profile or flags.
    pub fn parse(url: &str) -> Result<Destination> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            anyhow!("backup destination {url:?} is not a URL: use azure://CONTAINER/PREFIX, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or file:///DIR")
        })?;
        let service = match scheme {
            "azure" | "az" => Service::Azure,
            "s3" => Service::S3,
            "gs" | "gcs" => Service::Gcs,
            "file" => Service::Dir,
            other => bail!(
                "backup destination {url:?}: unknown scheme {other:?} (azure, s3, gs or file)"
            ),
        };
        let mut d = Destination {
            service,
            container: String::new(),
            prefix: String::new(),
            endpoint: None,
            region: None,
            account: None,
            credentials_file: None,
            managed_identity: false,
        };
        if service == Service::Dir {
            if !rest.starts_with('/') {
                bail!("backup destination {url:?}: a directory must be absolute (file:///DIR)");
            }
            let dir = rest.trim_end_matches('/');
            d.container = if dir.is_empty() { "/" } else { dir }.to_string();
            return Ok(d);
        }
        let rest = rest.trim_end_matches('/');
        let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if container.is_empty() {
            bail!(
                "backup destination {url:?}: no {} name",
                if service == Service::Azure {
                    "container"
                } else {
                    "bucket"
                }
            );
        }
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
            bail!("backup destination {url:?}: the prefix must be plain path segments");
        }
        d.container = container.to_string();
        d.prefix = prefix.trim_matches('/').to_string();
        Ok(d)
    }
}

/// Secrets and settings from the environment and the credentials file (the file wins).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    vars: BTreeMap<String, String>,
    /// Where the file values came from (for messages).
    file: Option<PathBuf>,
}

/// The variables a destination reads, by service.
pub const AZURE_VARS: &[&str] = &[
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
];
pub const S3_VARS: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
];
pub const GCS_VARS: &[&str] = &[
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

impl Credentials {
    /// Read the variables `names` from `env` and, when given, from `file` (`KEY=VALUE` lines,
    /// `#` comments, optional quotes, optional `export `), which overrides the environment.
    pub fn load(
        names: &[&str],
        env: &dyn Fn(&str) -> Option<String>,
        file: Option<&std::path::Path>,
    ) -> Result<Credentials> {
        let mut vars = BTreeMap::new();
        for n in names {
            if let Some(v) = env(n).filter(|v| !v.is_empty()) {
                vars.insert(n.to_string(), v);
            }
        }
        if let Some(f) = file {
            check_private(f)?;
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading credentials file {}", f.display()))?;
            for (k, v) in parse_env_file(&text)
                .map_err(|(line, m)| anyhow!("credentials file {}:{line}: {m}", f.display()))?
            {
                vars.insert(k, v);
            }
        }
        Ok(Credentials {
            vars,
            file: file.map(|f| f.to_path_buf()),
        })
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.vars.get(k).map(String::as_str)
    }

    /// Where a missing value may be set, for messages.
    fn sources(&self) -> String {
        match &self.file {
            Some(f) => format!("the environment or {}", f.display()),
            None => "the environment or a credentials-file".to_string(),
        }
    }
}

/// Refuse a secrets file that group or others can read.
pub fn check_private(f: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::metadata(f).with_context(|| format!("credentials file {}", f.display()))?;
    let mode = md.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "credentials file {} is readable by others (mode {mode:04o}); run `chmod 600 {}`",
            f.display(),
            f.display()
        );
    }
    Ok(())
}

/// `KEY=VALUE` lines (systemd `EnvironmentFile=` style). Errors carry the 1-based line.
pub fn parse_env_file(text: &str) -> std::result::Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| (i + 1, "expected KEY=VALUE".to_string()))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err((i + 1, format!("bad variable name {k:?}")));
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            v
        };
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// What opening a destination needs from the host besides the destination itself.
pub struct OpenCtx<'a> {
    pub host: &'a Host,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Whether this host is an Azure VM (DMI); managed identity is refused elsewhere.
    pub on_azure: bool,
    /// IMDS base URL (`http://169.254.169.254` unless configured).
    pub imds_endpoint: String,
}

/// An opened destination: the store, the key prefix, and the service's part limits.
#[derive(Debug, Clone)]
pub struct Store {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjPath,
    pub service: Service,
    /// The destination as shown in messages (no secrets).
    pub name: String,
}

impl Store {
    /// The full key of `rel` (a '/'-separated name under the prefix).
    pub fn key(&self, rel: &str) -> ObjPath {
        let mut s = self.prefix.to_string();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            if !s.is_empty() {
                s.push('/');
            }
            s.push_str(part);
        }
        ObjPath::from(s)
    }

    /// `rel` back from a full key (None when the key is outside the prefix).
    pub fn rel(&self, key: &ObjPath) -> Option<String> {
        let parts: Vec<_> = key.parts().collect();
        let pre: Vec<_> = self.prefix.parts().collect();
        if parts.len() < pre.len() || parts[..pre.len()] != pre[..] {
            return None;
        }
        Some(
            parts[pre.len()..]
                .iter()
                .map(|p| p.as_ref())
                .collect::<Vec<_>>()
                .join("/"),
        )
    }
}

/// Client settings shared by every cloud service: dbhost's resolver and bundled roots, timeouts
/// that let big parts through but not a stalled connection, HTTP only when the endpoint itself
/// says http://.
fn client_options(host: &Host, endpoint: Option<&str>) -> ClientOptions {
    crate::net::install_crypto();
    let mut o = ClientOptions::new();
    for der in crate::net::bundled_roots() {
        if let Ok(c) = object_store::Certificate::from_der(der) {
            o = o.with_root_certificate(c);
        }
    }
    o.with_dns_resolver(Arc::new(Resolver::from_host(host)))
        .with_allow_http(endpoint.is_some_and(|e| e.starts_with("http://")))
        .with_connect_timeout(Duration::from_secs(10))
        // A part of hundreds of MiB may take long on a slow link; a connection that stops
        // moving fails within two minutes whatever the request.
        .with_timeout(Duration::from_secs(3600))
        .with_read_timeout(Duration::from_secs(120))
        .with_user_agent(reqwest::header::HeaderValue::from_static(concat!(
            "dbhost/",
            env!("CARGO_PKG_VERSION")
        )))
}

/// Bounded retries: a destination that does not answer fails the command in about a minute,
/// naming what it last said.
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 4,
        retry_timeout: Duration::from_secs(60),
        ..RetryConfig::default()
    }
}

/// Open a destination: credentials checked, client built. Makes no request.
pub fn open(d: &Destination, ctx: &OpenCtx<'_>) -> Result<Store> {
    let name = d.to_string();
    let store: Arc<dyn ObjectStore> = match d.service {
        Service::Dir => {
            let dir = ctx.host.path(&d.container);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating backup directory {}", dir.display()))?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .with_context(|| format!("opening backup directory {}", dir.display()))?,
            )
        }
        Service::Azure => Arc::new(open_azure(d, ctx)?),
        Service::S3 => Arc::new(open_s3(d, ctx)?),
        Service::Gcs => Arc::new(open_gcs(d, ctx)?),
    };
    let prefix = if d.service == Service::Dir {
        ObjPath::from("")
    } else {
        ObjPath::from(d.prefix.as_str())
    };
    Ok(Store {
        store,
        prefix,
        service: d.service,
        name,
    })
}

fn creds(d: &Destination, ctx: &OpenCtx<'_>, names: &[&str]) -> Result<Credentials> {
    let file = d.credentials_file.as_ref().map(|f| ctx.host.path(f));
    Credentials::load(names, ctx.env, file.as_deref())
}

fn open_azure(d: &Destination, ctx: &OpenCtx<'_>) -> Result<object_store::azure::MicrosoftAzure> {
    use object_store::azure::MicrosoftAzureBuilder;
    let c = creds(d, ctx, AZURE_VARS)?;
    let account = d
        .account
        .clone()
        .or_else(|| c.get("AZURE_STORAGE_ACCOUNT_NAME").map(str::to_string))
        .ok_or_else(|| {
            anyhow!(
                "{d}: no storage account: set `account` in the profile or AZURE_STORAGE_ACCOUNT_NAME in {}",
                c.sources()
            )
        })?;
    let mut b = MicrosoftAzureBuilder::new()
        .with_account(&account)
        .with_container_name(&d.container)
        .with_client_options(client_options(ctx.host, d.endpoint.as_deref()))
        .with_retry(retry());
    if let Some(e) = &d.endpoint {
        b = b.with_endpoint(e.clone());
    }
    b = if d.managed_identity {
        if !ctx.on_azure {
            bail!(
                "{d}: managed-identity needs an Azure VM, and this host's DMI does not say Azure"
            );
        }
        let ep = ctx.imds_endpoint.trim_end_matches('/');
        b.with_credential_type("managed_identity")
            .with_msi_endpoint(format!("{ep}/metadata/identity/oauth2/token"))
    } else if let Some(k) = c.get("AZURE_STORAGE_ACCOUNT_KEY") {
        b.with_access_key(k)
    } else if let Some(s) = c.get("AZURE_STORAGE_SAS_TOKEN") {
        b.with_config(
            object_store::azure::AzureConfigKey::SasKey,
            s.trim_start_matches('?'),
        )
    } else {
        bail!(
            "{d}: no credentials: set AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN in {}, or `managed-identity = true` on an Azure VM",
            c.sources()
        )
    };
    b.build().with_context(|| format!("configuring {d}"))
}

fn open_s3(d: &Destination, ctx: &OpenCtx<'_>) -> Result<object_store::aws::AmazonS3> {
    use object_store::aws::AmazonS3Builder;
    let c = creds(d, ctx, S3_VARS)?;
    let (Some(id), Some(secret)) = (c.get("AWS_ACCESS_KEY_ID"), c.get("AWS_SECRET_ACCESS_KEY"))
    else {
        bail!(
            "{d}: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in {}",
            c.sources()
        );
    };
    let region = d
        .region
        .clone()
        .or_else(|| c.get("AWS_REGION").map(str::to_string))
        .unwrap_or_else(|| "us-east-1".to_string());
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&d.container)
        .with_region(region)
        .with_access_key_id(id)
        .with_secret_access_key(secret)
        .with_client_options(client_options(ctx.host, d.endpoint.as_deref()))
        .with_retry(retry());
    if let Some(t) = c.get("AWS_SESSION_TOKEN") {
        b = b.with_token(t);
    }
    if let Some(e) = &d.endpoint {
        // S3-compatible servers are addressed path-style (http://HOST:PORT/BUCKET/KEY).
        b = b
            .with_endpoint(e.clone())
            .with_virtual_hosted_style_request(false);
    }
    b.build().with_context(|| format!("configuring {d}"))
}

fn open_gcs(d: &Destination, ctx: &OpenCtx<'_>) -> Result<object_store::gcp::GoogleCloudStorage> {
    use object_store::gcp::GoogleCloudStorageBuilder;
    let c = creds(d, ctx, GCS_VARS)?;
    let mut b = GoogleCloudStorageBuilder::new()
        .with_bucket_name(&d.container)
        .with_client_options(client_options(ctx.host, d.endpoint.as_deref()))
        .with_retry(retry());
    if let Some(k) = c.get("GOOGLE_SERVICE_ACCOUNT_KEY") {
        b = b.with_service_account_key(k);
    } else if let Some(p) = c.get("GOOGLE_APPLICATION_CREDENTIALS") {
        b = b.with_application_credentials(ctx.host.path(p).to_string_lossy());
    } else {
        bail!(
            "{d}: no credentials: set GOOGLE_APPLICATION_CREDENTIALS (a service-account JSON file) or GOOGLE_SERVICE_ACCOUNT_KEY in {}",
            c.sources()
        );
    }
    if let Some(e) = &d.endpoint {
        b = b.with_base_url(e);
    }
    b.build().with_context(|| format!("configuring {d}"))
}

/// One error line from an object_store error with its sources (the service's answer is in
/// them: status, code, message).
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests;
