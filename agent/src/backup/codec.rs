//! What happens to a backup stream between the dump tool and the destination, and back:
//! compression (zstd by default, multi-threaded; gzip; none), then optional encryption to age
//! recipients (X25519 public keys: the private key never needs to be on the host). Writers are
//! stacked: tool → counter/hash of the plain bytes → compressor → encryptor → sink.

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::str::FromStr;

pub use crate::profile::backup::Compression;

/// How to encode one stream.
#[derive(Debug, Clone, Default)]
pub struct Encoding {
    pub compression: Compression,
    /// zstd 1-19 (default 3), gzip 1-9 (default 6).
    pub level: Option<i32>,
    /// zstd worker threads (0: one per CPU).
    pub threads: u32,
    /// age recipients (`age1...`); empty: no encryption.
    pub recipients: Vec<String>,
}

/// Parse age recipients, naming the bad one.
pub fn parse_recipients(list: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    list.iter()
        .map(|r| {
            age::x25519::Recipient::from_str(r.trim()).map_err(|e| {
                anyhow!("encryption recipient {r:?} is not an age public key (age1...): {e}")
            })
        })
        .collect()
}

/// Read age identities (`AGE-SECRET-KEY-1...` lines, `#` comments) from a key file's text.
pub fn parse_identities(text: &str, file: &str) -> Result<Vec<age::x25519::Identity>> {
    let mut ids = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        ids.push(
            age::x25519::Identity::from_str(l)
                .map_err(|e| anyhow!("{file}:{}: not an age secret key: {e}", i + 1))?,
        );
    }
    if ids.is_empty() {
        bail!("{file}: no age secret key (AGE-SECRET-KEY-1...)");
    }
    Ok(ids)
}

/// Counts and hashes the plain bytes passing through, then hands them on.
pub struct Tally<W> {
    inner: W,
    pub bytes: u64,
    hash: Sha256,
}

impl<W: Write> Tally<W> {
    pub fn new(inner: W) -> Self {
        Tally {
            inner,
            bytes: 0,
            hash: Sha256::new(),
        }
    }
    pub fn into_parts(self) -> (W, u64, String) {
        (self.inner, self.bytes, hex::encode(self.hash.finalize()))
    }
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The encoder stack over a sink; [`Encoder::finish`] closes every layer in order (a missing
/// finish would leave a truncated zstd frame or age stream).
pub struct Encoder<W: Write + Send> {
    inner: Box<dyn Finish<W> + Send>,
}

trait Finish<W>: Write {
    fn finish(self: Box<Self>) -> io::Result<W>;
}

struct Plain<W>(W);
impl<W: Write> Write for Plain<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
impl<W: Write> Finish<W> for Plain<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        Ok(self.0)
    }
}

struct Age<W: Write>(age::stream::StreamWriter<W>);
impl<W: Write> Write for Age<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
impl<W: Write> Finish<W> for Age<W> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        self.0.finish()
    }
}

struct Zstd<W: Write, I: Finish<W>>(
    zstd::stream::write::Encoder<'static, Box<I>>,
    std::marker::PhantomData<W>,
);
impl<W: Write, I: Finish<W>> Write for Zstd<W, I> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
impl<W: Write, I: Finish<W>> Finish<W> for Zstd<W, I> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        self.0.finish()?.finish()
    }
}

struct Gzip<W: Write, I: Finish<W>>(
    flate2::write::GzEncoder<Box<I>>,
    std::marker::PhantomData<W>,
);
impl<W: Write, I: Finish<W>> Write for Gzip<W, I> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
impl<W: Write, I: Finish<W>> Finish<W> for Gzip<W, I> {
    fn finish(self: Box<Self>) -> io::Result<W> {
        self.0.finish()?.finish()
    }
}

impl<W: Write + Send + 'static> Encoder<W> {
    /// Compress then (optionally) encrypt into `sink`.
    pub fn new(enc: &Encoding, sink: W) -> Result<Self> {
        let recipients = parse_recipients(&enc.recipients)?;
        if recipients.is_empty() {
            Self::compress(enc, Box::new(Plain(sink)))
        } else {
            let r: Vec<&dyn age::Recipient> = recipients
                .iter()
                .map(|r| r as &dyn age::Recipient)
                .collect();
            let w = age::Encryptor::with_recipients(r.into_iter())
                .map_err(|e| anyhow!("setting up age encryption: {e}"))?
                .wrap_output(sink)
                .context("starting the age stream")?;
            Self::compress(enc, Box::new(Age(w)))
        }
    }

    fn compress<I: Finish<W> + Send + 'static>(enc: &Encoding, inner: Box<I>) -> Result<Self> {
        let inner: Box<dyn Finish<W> + Send> = match enc.compression {
            Compression::None => inner,
            Compression::Zstd => {
                let mut z = zstd::stream::write::Encoder::new(inner, enc.level.unwrap_or(3))
                    .context("starting zstd")?;
                let threads = if enc.threads == 0 {
                    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
                } else {
                    enc.threads
                };
                if threads > 1 {
                    z.multithread(threads).context("zstd worker threads")?;
                }
                z.include_checksum(true).context("zstd frame checksum")?;
                Box::new(Zstd(z, std::marker::PhantomData))
            }
            Compression::Gzip => {
                let lvl = enc.level.unwrap_or(6).clamp(1, 9) as u32;
                Box::new(Gzip(
                    flate2::write::GzEncoder::new(inner, flate2::Compression::new(lvl)),
                    std::marker::PhantomData,
                ))
            }
        };
        Ok(Encoder { inner })
    }

    /// Close every layer and return the sink.
    pub fn finish(self) -> io::Result<W> {
        self.inner.finish()
    }
}

impl<W: Write + Send> Write for Encoder<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.inner.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The decoding stack over a reader: decrypt (when `identities` are given), then decompress.
pub fn decoder<'a>(
    compression: Compression,
    encrypted: bool,
    identities: &[age::x25519::Identity],
    src: Box<dyn Read + Send + 'a>,
) -> Result<Box<dyn Read + Send + 'a>> {
    let plain: Box<dyn Read + Send + 'a> = if encrypted {
        if identities.is_empty() {
            bail!("this backup is encrypted: pass --identity FILE with its age secret key");
        }
        let d = age::Decryptor::new(src).map_err(|e| anyhow!("reading the age header: {e}"))?;
        let ids = identities.iter().map(|i| i as &dyn age::Identity);
        Box::new(
            d.decrypt(ids)
                .map_err(|e| anyhow!("decrypting (is it the right key?): {e}"))?,
        )
    } else {
        src
    };
    Ok(match compression {
        Compression::None => plain,
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(plain).context("zstd")?),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(plain)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..400_000u32)
            .flat_map(|i| format!("INSERT INTO t VALUES ({i},'row {}');\n", i % 97).into_bytes())
            .collect()
    }

    fn round_trip(enc: &Encoding, ids: &[age::x25519::Identity]) -> (usize, Vec<u8>) {
        let data = sample();
        let mut e = Encoder::new(enc, Vec::new()).unwrap();
        for c in data.chunks(65_536) {
            e.write_all(c).unwrap();
        }
        let stored = e.finish().unwrap();
        let mut r = decoder(
            enc.compression,
            !enc.recipients.is_empty(),
            ids,
            Box::new(std::io::Cursor::new(stored.clone())),
        )
        .unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        (stored.len(), stored)
    }

    #[test]
    fn every_compression_round_trips_and_compresses() {
        let n = sample().len();
        for c in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let (len, _) = round_trip(
                &Encoding {
                    compression: c,
                    threads: 2,
                    ..Encoding::default()
                },
                &[],
            );
            if c == Compression::None {
                assert_eq!(len, n);
            } else {
                assert!(len * 5 < n, "{c:?}: {len} of {n}");
            }
        }
    }

    #[test]
    fn encrypted_to_a_public_key_decrypts_only_with_the_secret_key() {
        let id = age::x25519::Identity::generate();
        let enc = Encoding {
            recipients: vec![id.to_public().to_string()],
            ..Encoding::default()
        };
        let (_, stored) = round_trip(&enc, std::slice::from_ref(&id));
        assert!(stored.starts_with(b"age-encryption.org/v1"));
        let other = age::x25519::Identity::generate();
        let e = decoder(
            Compression::Zstd,
            true,
            &[other],
            Box::new(std::io::Cursor::new(stored.clone())),
        )
        .err()
        .expect("wrong key refused");
        assert!(e.to_string().contains("right key"), "{e}");
        let e = decoder(
            Compression::Zstd,
            true,
            &[],
            Box::new(std::io::Cursor::new(stored)),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("--identity"), "{e}");
    }

    #[test]
    fn bad_keys_are_named() {
        let e = parse_recipients(&["age1nope".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("age1nope"), "{e}");
        let e = parse_identities("# c\nAGE-SECRET-KEY-1XYZ\n", "k.txt")
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("k.txt:2:"), "{e}");
        assert!(parse_identities("# only a comment\n", "k.txt").is_err());
        let id = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let text = format!("# created: now\n{}\n", id.to_string().expose_secret());
        assert_eq!(parse_identities(&text, "k").unwrap().len(), 1);
    }

    #[test]
    fn tally_counts_and_hashes() {
        let mut t = Tally::new(Vec::new());
        t.write_all(b"abc").unwrap();
        let (inner, n, h) = t.into_parts();
        assert_eq!((inner, n), (b"abc".to_vec(), 3));
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
