//! Moving one stream between a program and a destination object without a local copy.
//!
//! Upload: program stdout → plain tally → compressor → encryptor → bounded channel → multipart
//! upload. The program's exit status is checked *before* the upload is completed: a dump tool
//! that fails after part of its stream went out leaves no complete object (and no manifest).
//!
//! Download: object → SHA-256 check → decryptor → decompressor → plain tally → a `Write` sink
//! (a program's stdin, a tar extractor, a file). The sink sees bytes before the hash verdict, so
//! callers give it a staging place and act only once this returns Ok.

use super::codec::{self, Encoder, Encoding, Tally};
use super::dest::Store;
use super::object::{self, ObjectWriter, Written};
use crate::host::{CommandSpec, Exec, Pipe};
use anyhow::{anyhow, bail, Context, Result};
use bytes::{Bytes, BytesMut};
use std::io::{self, Read, Write};
use tokio::sync::mpsc;

/// Chunk handed from the encoder thread to the uploader.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the threads (backpressure beyond the uploader's own).
const QUEUE: usize = 8;

/// What one uploaded stream produced.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub stored: Written,
    pub plain_bytes: u64,
    pub plain_sha256: String,
    /// The program's stderr (its last 64 KiB): positions and warnings are parsed from it.
    pub stderr: String,
}

/// How an upload is cut into parts.
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    pub size: u64,
    pub concurrency: usize,
}

/// A `Write` that sends full chunks into a channel (blocking: runs on its own thread).
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: BytesMut,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encode everything `src` yields into chunks on `tx`; returns the plain length and SHA-256.
fn encode_into(
    mut src: impl Read,
    enc: &Encoding,
    tx: mpsc::Sender<Bytes>,
) -> Result<(u64, String)> {
    let sink = ChannelWriter {
        tx,
        buf: BytesMut::with_capacity(CHUNK * 2),
    };
    let mut t = Tally::new(Encoder::new(enc, sink)?);
    io::copy(&mut src, &mut t).context("reading the stream")?;
    let (e, n, h) = t.into_parts();
    let mut sink = e.finish().context("finishing compression/encryption")?;
    sink.send().context("handing over the last chunk")?;
    Ok((n, h))
}

/// Upload what the channel carries; on the first error the receiver is dropped, which stops
/// the encoder thread (its sends fail).
async fn upload(
    store: &Store,
    rel: &str,
    parts: Parts,
    mut rx: mpsc::Receiver<Bytes>,
) -> Result<ObjectWriter> {
    let mut w = ObjectWriter::create(store, rel, parts.size, parts.concurrency).await?;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = w.write(&chunk).await {
            drop(rx);
            w.abort().await;
            return Err(e);
        }
    }
    Ok(w)
}

/// Run `cmd` and stream its stdout, encoded, into the object `rel`. Fails — leaving no complete
/// object — when the program exits non-zero, the stream cannot be read or the upload fails.
pub fn upload_command(
    rt: &tokio::runtime::Runtime,
    exec: &dyn Exec,
    cmd: &CommandSpec,
    store: &Store,
    rel: &str,
    enc: &Encoding,
    parts: Parts,
) -> Result<Uploaded> {
    let mut child = exec.spawn(cmd, Pipe::Out)?;
    let stdout = child.stdout.take().expect("Pipe::Out gives stdout");
    let kill = child.killer();
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
    let (produced, uploaded) = std::thread::scope(|s| {
        let producer = s.spawn(|| {
            let r = encode_into(stdout, enc, tx);
            if r.is_err() {
                // The upload failed or the stream broke: stop the program rather than leave it
                // blocked on a full pipe.
                kill();
            }
            r
        });
        let uploaded = rt.block_on(upload(store, rel, parts, rx));
        if uploaded.is_err() {
            kill();
        }
        (producer.join(), uploaded)
    });
    let status = child.wait()?;
    let line = cmd.display();
    let w = match uploaded {
        Ok(w) => w,
        Err(e) => return Err(e.context(format!("streaming `{line}` to {}", store.name))),
    };
    let fail = |why: String| -> Result<Uploaded> {
        let tail: String = status
            .stderr
            .trim()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join(" | ");
        Err(anyhow!(
            "{why}{}",
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        ))
    };
    let produced = match produced {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(anyhow!("the encoder thread panicked")),
    };
    if status.status != 0 {
        let sent = w.bytes();
        rt.block_on(w.abort());
        return fail(format!(
            "`{line}` exited with status {} after {sent} bytes had been uploaded; the backup is not complete",
            status.status
        ));
    }
    let (plain_bytes, plain_sha256) = match produced {
        Ok(p) => p,
        Err(e) => {
            rt.block_on(w.abort());
            return Err(e.context(format!("streaming `{line}` to {}", store.name)));
        }
    };
    let stored = rt.block_on(w.finish())?;
    Ok(Uploaded {
        stored,
        plain_bytes,
        plain_sha256,
        stderr: status.stderr,
    })
}

/// A `Read` over chunks arriving on a channel (the download side's decoder thread).
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.cur = b,
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// How to decode a stored object.
pub struct Decoding<'a> {
    pub compression: codec::Compression,
    pub encrypted: bool,
    pub identities: &'a [age::x25519::Identity],
}

/// Download `want`, check its SHA-256, decode it into `sink`, and check the plain stream's
/// length and SHA-256 against `plain` (bytes, hex). A corrupt object is reported as
/// [`object::HashMismatch`] (naming it, expected and actual hash) even when the decoder choked
/// on it first.
pub fn download_into(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    want: &Written,
    dec: &Decoding<'_>,
    plain: (u64, &str),
    sink: &mut (dyn Write + Send),
) -> Result<()> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(QUEUE);
    let (fetched, decoded) = std::thread::scope(|s| {
        let decoder = s.spawn(move || -> Result<(u64, String)> {
            let src = ChannelReader {
                rx,
                cur: Bytes::new(),
            };
            let mut r = codec::decoder(
                dec.compression,
                dec.encrypted,
                dec.identities,
                Box::new(src),
            )?;
            let mut t = Tally::new(sink);
            io::copy(&mut r, &mut t).with_context(|| format!("decoding {}", want.name))?;
            let (_, n, h) = t.into_parts();
            Ok((n, h))
        });
        let mut tx = Some(tx);
        let fetched = rt.block_on(object::read_verified(store, want, &mut |chunk| {
            // Once the decoder has stopped, keep downloading only to finish the hash.
            if let Some(t) = &tx {
                if t.send(Bytes::copy_from_slice(chunk)).is_err() {
                    tx = None;
                }
            }
            Ok(())
        }));
        drop(tx);
        (fetched, decoder.join())
    });
    fetched?;
    let (n, h) = match decoded {
        Ok(r) => r?,
        Err(_) => bail!("the decoder thread panicked"),
    };
    if n != plain.0 || h != plain.1 {
        bail!(
            "{}: {} decodes to {n} bytes with sha256 {h}, but the manifest records {} bytes with sha256 {}",
            store.name,
            want.name,
            plain.0,
            plain.1
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
