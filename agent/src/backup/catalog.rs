//! What a destination holds: backups (a directory with a manifest), their verify records, and
//! partial leftovers (a directory without one). Deleting a backup removes its manifest first,
//! so an interrupted deletion leaves a partial directory, never a listed backup with missing
//! objects.

use super::dest::{describe, Store};
use super::manifest::{self, Manifest, Started, VerifyRecord};
use super::object::get_small;
use anyhow::{anyhow, Result};
use futures_util::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;

/// One backup directory in a destination.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    /// Present: a complete backup. Absent: partial (interrupted or failed).
    pub manifest: Option<Manifest>,
    pub verify: Option<VerifyRecord>,
    pub started: Option<Started>,
    /// A manifest that exists but cannot be read (never treated as a backup).
    pub problem: Option<String>,
}

impl Entry {
    pub fn complete(&self) -> bool {
        self.manifest.is_some()
    }
    /// Verified and passed.
    pub fn verified_ok(&self) -> bool {
        self.complete() && self.verify.as_ref().is_some_and(|v| v.ok)
    }
    /// Seconds since the epoch of the backup's start (from its id).
    pub fn time(&self) -> Option<i64> {
        manifest::id_time(&self.id)
    }
}

/// Every backup directory under the destination prefix, oldest first.
pub async fn scan(store: &Store) -> Result<Vec<Entry>> {
    let prefix = (!store.prefix.as_ref().is_empty()).then_some(&store.prefix);
    let listed = store
        .store
        .list_with_delimiter(prefix)
        .await
        .map_err(|e| anyhow!("{}: listing backups: {}", store.name, describe(&e)))?;
    let mut ids: Vec<String> = listed
        .common_prefixes
        .iter()
        .filter_map(|p| store.rel(p))
        .filter(|id| manifest::id_time(id).is_some())
        .collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        out.push(entry(store, &id).await?);
    }
    Ok(out)
}

async fn entry(store: &Store, id: &str) -> Result<Entry> {
    let (mut manifest, mut problem) = (None, None);
    if let Some(b) = get_small(store, &format!("{id}/{}", manifest::MANIFEST)).await? {
        match Manifest::parse(&b, id) {
            Ok(m) => manifest = Some(m),
            Err(e) => problem = Some(format!("{e:#}")),
        }
    }
    let verify = get_small(store, &format!("{id}/{}", manifest::VERIFY))
        .await?
        .and_then(|b| serde_json::from_slice::<VerifyRecord>(&b).ok());
    let started = get_small(store, &format!("{id}/{}", manifest::STARTED))
        .await?
        .and_then(|b| serde_json::from_slice::<Started>(&b).ok());
    Ok(Entry {
        id: id.to_string(),
        manifest,
        verify,
        started,
        problem,
    })
}

/// Remove every object of backup `id`, the manifest first. Returns how many were removed.
pub async fn delete(store: &Store, id: &str) -> Result<usize> {
    let man = store.key(&format!("{id}/{}", manifest::MANIFEST));
    match store.store.delete(&man).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => {
            return Err(anyhow!(
                "{}: deleting {id}/{}: {}",
                store.name,
                manifest::MANIFEST,
                describe(&e)
            ))
        }
    }
    let dir = store.key(id);
    let keys: Vec<ObjPath> = {
        let mut s = store.store.list(Some(&dir));
        let mut v = Vec::new();
        while let Some(m) = s.next().await {
            v.push(
                m.map_err(|e| anyhow!("{}: listing {id}: {}", store.name, describe(&e)))?
                    .location,
            );
        }
        v
    };
    let mut n = 1;
    for k in keys {
        match store.store.delete(&k).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => n += 1,
            Err(e) => return Err(anyhow!("{}: deleting {k}: {}", store.name, describe(&e))),
        }
    }
    Ok(n)
}

/// Partial backups this host may remove: no manifest, and started by `host` (this host holds
/// the backup lock, so none of its own is still running) or started more than `stale_secs`
/// ago by anyone.
pub fn partials_to_clean<'a>(
    entries: &'a [Entry],
    host: &str,
    now: i64,
    stale_secs: i64,
) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| !e.complete() && e.problem.is_none())
        .filter(|e| {
            let mine = e.started.as_ref().is_some_and(|s| s.host == host);
            let old = e.time().is_some_and(|t| now - t > stale_secs);
            mine || old
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::dest::Service;
    use crate::backup::object::put_small;

    fn mem() -> Store {
        Store {
            store: std::sync::Arc::new(object_store::memory::InMemory::new()),
            prefix: ObjPath::from("p"),
            service: Service::Dir,
            name: "mem://".into(),
        }
    }

    #[test]
    fn scan_tells_complete_from_partial_and_delete_removes_all() {
        let s = mem();
        let rt = crate::net::runtime().unwrap();
        let a = "20261201T000000Z-mariadb-logical-aaaa";
        let b = "20261202T000000Z-mariadb-logical-bbbb";
        rt.block_on(async {
            let mut m = crate::backup::manifest::tests_support::sample(a);
            m.id = a.into();
            put_small(&s, &format!("{a}/data.sql.zst"), b"x".to_vec())
                .await
                .unwrap();
            put_small(
                &s,
                &format!("{a}/manifest.json"),
                serde_json::to_vec(&m).unwrap(),
            )
            .await
            .unwrap();
            let st = Started {
                id: b.into(),
                host: "db1".into(),
                started: "x".into(),
                dbhost_version: "0".into(),
            };
            put_small(
                &s,
                &format!("{b}/started.json"),
                serde_json::to_vec(&st).unwrap(),
            )
            .await
            .unwrap();
            put_small(&s, &format!("{b}/data.sql.zst"), b"y".to_vec())
                .await
                .unwrap();
            put_small(&s, "notes.txt", b"z".to_vec()).await.unwrap();
        });
        let all = rt.block_on(scan(&s)).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].complete() && !all[1].complete());
        let now = manifest::id_time(b).unwrap() + 60;
        assert_eq!(partials_to_clean(&all, "db1", now, 86_400).len(), 1);
        assert_eq!(partials_to_clean(&all, "db2", now, 86_400).len(), 0);
        assert_eq!(
            partials_to_clean(&all, "db2", now + 86_400, 86_400).len(),
            1
        );
        assert_eq!(rt.block_on(delete(&s, a)).unwrap(), 2);
        let all = rt.block_on(scan(&s)).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].id, b);
    }
}
