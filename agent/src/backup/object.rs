//! Objects in a destination: streamed multipart writes that hash what they send, small whole
//! writes (manifests), and reads that check the SHA-256 of every byte before handing it on.

use super::dest::{describe, Store};
use super::parts::{capacity, human};
use anyhow::{anyhow, bail, Result};
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One stored object: its name under the destination prefix, length and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// A streamed object: parts of a fixed size go out with bounded concurrency (backpressure: a
/// write waits while `concurrency` parts are in flight); the object exists only after
/// [`ObjectWriter::finish`].
pub struct ObjectWriter {
    upload: WriteMultipart,
    hash: Sha256,
    bytes: u64,
    limit: u64,
    part: u64,
    concurrency: usize,
    rel: String,
    dest: String,
    service: &'static str,
}

impl ObjectWriter {
    /// Start `rel` in `part`-byte parts (see [`super::parts::part_size`]).
    pub async fn create(store: &Store, rel: &str, part: u64, concurrency: usize) -> Result<Self> {
        let up = store
            .store
            .put_multipart(&store.key(rel))
            .await
            .map_err(|e| anyhow!("{}: starting upload of {rel}: {}", store.name, describe(&e)))?;
        let limits = store.service.limits();
        Ok(ObjectWriter {
            upload: WriteMultipart::new_with_chunk_size(up, usize::try_from(part)?),
            hash: Sha256::new(),
            bytes: 0,
            limit: capacity(limits, part),
            part,
            concurrency: concurrency.max(1),
            rel: rel.to_string(),
            dest: store.name.clone(),
            service: limits.service,
        })
    }

    /// Append `data`; waits while too many parts are in flight.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        let next = self.bytes + data.len() as u64;
        if next > self.limit {
            bail!(
                "{}: {} outgrew what {} parts of {} can hold on {} ({}); the expected size was too low (pass a larger --expected-size)",
                self.dest,
                self.rel,
                self.limit / self.part.max(1),
                human(self.part),
                self.service,
                human(self.limit)
            );
        }
        self.upload
            .wait_for_capacity(self.concurrency)
            .await
            .map_err(|e| anyhow!("{}: uploading {}: {}", self.dest, self.rel, describe(&e)))?;
        self.hash.update(data);
        self.upload.write(data);
        self.bytes = next;
        Ok(())
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Complete the object (S3 CompleteMultipartUpload, Azure Put Block List).
    pub async fn finish(self) -> Result<Written> {
        let ObjectWriter {
            upload,
            hash,
            bytes,
            rel,
            dest,
            ..
        } = self;
        upload
            .finish()
            .await
            .map_err(|e| anyhow!("{dest}: completing {rel}: {}", describe(&e)))?;
        Ok(Written {
            name: rel,
            bytes,
            sha256: hex::encode(hash.finalize()),
        })
    }

    /// Give up: S3 aborts the upload; on Azure uncommitted blocks expire by themselves.
    pub async fn abort(self) {
        let (dest, rel) = (self.dest.clone(), self.rel.clone());
        if let Err(e) = self.upload.abort().await {
            tracing::warn!("{dest}: aborting the upload of {rel}: {}", describe(&e));
        }
    }
}

/// Write a small object in one request.
pub async fn put_small(store: &Store, rel: &str, data: Vec<u8>) -> Result<Written> {
    let sha256 = hex::encode(Sha256::digest(&data));
    let bytes = data.len() as u64;
    store
        .store
        .put(&store.key(rel), PutPayload::from(Bytes::from(data)))
        .await
        .map_err(|e| anyhow!("{}: writing {rel}: {}", store.name, describe(&e)))?;
    Ok(Written {
        name: rel.to_string(),
        bytes,
        sha256,
    })
}

/// Read a small object whole; `None` when it does not exist.
pub async fn get_small(store: &Store, rel: &str) -> Result<Option<Vec<u8>>> {
    match store.store.get(&store.key(rel)).await {
        Ok(r) => Ok(Some(
            r.bytes()
                .await
                .map_err(|e| anyhow!("{}: reading {rel}: {}", store.name, describe(&e)))?
                .to_vec(),
        )),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(anyhow!("{}: reading {rel}: {}", store.name, describe(&e))),
    }
}

/// Up to `limit` keys under the destination prefix (relative names), for probes and listings.
pub async fn list_keys(store: &Store, limit: usize) -> Result<Vec<String>> {
    let prefix = (!store.prefix.as_ref().is_empty()).then_some(&store.prefix);
    let mut s = store.store.list(prefix);
    let mut out = Vec::new();
    while let Some(m) = s.next().await {
        let m = m.map_err(|e| anyhow!("{}: listing: {}", store.name, describe(&e)))?;
        out.push(
            store
                .rel(&m.location)
                .unwrap_or_else(|| m.location.to_string()),
        );
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// A stored object whose bytes are not the ones the manifest recorded.
#[derive(Debug, thiserror::Error)]
#[error("{dest}: object {name} is corrupt: expected sha256 {expected} ({expected_bytes} bytes), got {actual} ({actual_bytes} bytes)")]
pub struct HashMismatch {
    pub dest: String,
    pub name: String,
    pub expected: String,
    pub actual: String,
    pub expected_bytes: u64,
    pub actual_bytes: u64,
}

/// Stream `want` from the destination into `sink`, hashing as it goes; fails with
/// [`HashMismatch`] when length or SHA-256 differ. The sink sees every byte before the verdict,
/// so callers that must not act on unverified bytes give it a staging place.
pub async fn read_verified(
    store: &Store,
    want: &Written,
    sink: &mut (dyn FnMut(&[u8]) -> Result<()> + Send),
) -> Result<()> {
    let rel = &want.name;
    let got = store
        .store
        .get(&store.key(rel))
        .await
        .map_err(|e| anyhow!("{}: reading {rel}: {}", store.name, describe(&e)))?;
    let mut stream = got.into_stream();
    let mut hash = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| anyhow!("{}: reading {rel}: {}", store.name, describe(&e)))?;
        hash.update(&chunk);
        n += chunk.len() as u64;
        sink(&chunk)?;
    }
    let actual = hex::encode(hash.finalize());
    if actual != want.sha256 || n != want.bytes {
        return Err(HashMismatch {
            dest: store.name.clone(),
            name: rel.clone(),
            expected: want.sha256.clone(),
            actual,
            expected_bytes: want.bytes,
            actual_bytes: n,
        }
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::dest::Service;
    use object_store::memory::InMemory;
    use object_store::path::Path as ObjPath;
    use std::sync::Arc;

    pub(crate) fn mem(service: Service) -> Store {
        Store {
            store: Arc::new(InMemory::new()),
            prefix: ObjPath::from("pre/fix"),
            service,
            name: "mem://test".into(),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        crate::net::runtime().unwrap()
    }

    #[test]
    fn streamed_object_hash_and_read_back() {
        let s = mem(Service::S3);
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let w = rt().block_on(async {
            let mut w = ObjectWriter::create(&s, "id/data.zst", 5 << 20, 2)
                .await
                .unwrap();
            for c in data.chunks(100_000) {
                w.write(c).await.unwrap();
            }
            w.finish().await.unwrap()
        });
        assert_eq!(w.bytes, data.len() as u64);
        assert_eq!(w.sha256, hex::encode(Sha256::digest(&data)));
        let mut back = Vec::new();
        rt().block_on(read_verified(&s, &w, &mut |c| {
            back.extend_from_slice(c);
            Ok(())
        }))
        .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn a_flipped_byte_is_named_with_both_hashes() {
        let s = mem(Service::Dir);
        let rt = rt();
        let w = rt
            .block_on(put_small(&s, "id/data", b"hello world".to_vec()))
            .unwrap();
        rt.block_on(put_small(&s, "id/data", b"hellO world".to_vec()))
            .unwrap();
        let e = rt
            .block_on(read_verified(&s, &w, &mut |_| Ok(())))
            .unwrap_err();
        let m = e.downcast_ref::<HashMismatch>().expect("typed mismatch");
        assert_eq!(m.name, "id/data");
        assert_eq!(m.expected, w.sha256);
        assert_ne!(m.actual, w.sha256);
        let text = e.to_string();
        assert!(
            text.contains("id/data") && text.contains(&w.sha256),
            "{text}"
        );
        // A truncated object fails the same way.
        rt.block_on(put_small(&s, "id/data", b"hello".to_vec()))
            .unwrap();
        let e = rt
            .block_on(read_verified(&s, &w, &mut |_| Ok(())))
            .unwrap_err();
        assert!(e.to_string().contains("(5 bytes)"), "{e}");
    }

    #[test]
    fn an_object_past_its_part_budget_fails_before_the_service_would() {
        // Local limits have no part cap; S3's 10,000 parts of 5 MiB hold ~48.8 GiB. Simulate
        // with a writer whose limit is tiny.
        let s = mem(Service::S3);
        let rt = rt();
        let e = rt.block_on(async {
            let mut w = ObjectWriter::create(&s, "id/x", 5 << 20, 1).await.unwrap();
            w.limit = 10;
            w.write(b"12345").await.unwrap();
            w.write(b"123456").await.unwrap_err()
        });
        let t = e.to_string();
        assert!(
            t.contains("outgrew") && t.contains("S3") && t.contains("--expected-size"),
            "{t}"
        );
    }

    #[test]
    fn missing_small_object_is_none() {
        let s = mem(Service::Dir);
        assert_eq!(rt().block_on(get_small(&s, "nope")).unwrap(), None);
    }
}
