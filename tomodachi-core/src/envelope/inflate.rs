//! Inflating compressed envelope data with a cap, so that a decompression bomb is a
//! malformed message and not an out-of-memory kill.
//!
//! A zlib stream of 1.36 MB inflates to 1 GB: unchecked, a few such messages in a prefetch
//! or an SQS batch exhaust memory, and the broker redelivers them after the kill (a crash
//! loop). [`inflate_capped`] first streams the inflate through a small buffer, counting,
//! and only inflates into memory (a buffer of the exact size) what fits under the cap: a
//! rejected bomb costs 64 KiB and the CPU to inflate up to the cap (about a tenth of a
//! second for 64 MiB), never the memory. Data that fits is inflated twice; compressed
//! data is rare (tomodachi compresses from 60 000 characters) and inflating runs at
//! hundreds of MB/s, so the second pass is cheap beside holding a bomb's worth of memory.

#[cfg(feature = "envelopes")]
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(feature = "envelopes")]
use super::EnvelopeError;

/// The default of [`max_inflated_size`]: 64 MiB.
pub const DEFAULT_MAX_INFLATED_SIZE: usize = 64 * 1024 * 1024;

static MAX_INFLATED_SIZE: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_INFLATED_SIZE);

/// The most bytes compressed envelope data may inflate to in this process
/// ([`DEFAULT_MAX_INFLATED_SIZE`] unless set with [`set_max_inflated_size`]; the facade
/// sets it from the option `envelope.max_inflated_size`).
pub fn max_inflated_size() -> usize {
    MAX_INFLATED_SIZE.load(Ordering::Relaxed)
}

/// Sets [`max_inflated_size`] for every envelope of the process.
pub fn set_max_inflated_size(bytes: usize) {
    MAX_INFLATED_SIZE.store(bytes, Ordering::Relaxed);
}

/// Read size of the counting pass: large enough to be cheap per call, small enough not to
/// matter in memory.
#[cfg(feature = "envelopes")]
const CHUNK: usize = 64 * 1024;

#[cfg(feature = "envelopes")]
/// Inflates the zlib stream `compressed` of an envelope whose `data_encoding` is
/// `encoding`, refusing to produce more than [`max_inflated_size`] bytes.
///
/// The inflate is streamed: past the cap it stops and returns
/// [`EnvelopeError::TooLarge`], having held 64 KiB, not the cap. Every envelope with
/// compressed data (JSON's `base64_gzip_json`, protobuf's) opens it with this.
///
/// ```
/// use std::io::Write as _;
/// use tomodachi_core::envelope::{EnvelopeError, inflate_capped, set_max_inflated_size};
///
/// let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
/// zlib.write_all(&[b'x'; 4096]).unwrap();
/// let compressed = zlib.finish().unwrap();
///
/// assert_eq!(inflate_capped(&compressed, "base64_gzip_json").unwrap().len(), 4096);
/// set_max_inflated_size(1024);
/// assert!(matches!(
///     inflate_capped(&compressed, "base64_gzip_json"),
///     Err(EnvelopeError::TooLarge { limit: 1024, .. })
/// ));
/// # set_max_inflated_size(tomodachi_core::envelope::DEFAULT_MAX_INFLATED_SIZE);
/// ```
pub fn inflate_capped(compressed: &[u8], encoding: &str) -> Result<Vec<u8>, EnvelopeError> {
    let undecodable = |error: std::io::Error| EnvelopeError::Undecodable {
        encoding: encoding.to_owned(),
        reason: error.to_string(),
    };
    let limit = max_inflated_size();
    // Counting pass: how large is it, without keeping it?
    let mut decoder = flate2::read::ZlibDecoder::new(compressed);
    let mut chunk = vec![0_u8; CHUNK];
    let mut size = 0_usize;
    loop {
        let read = decoder.read(&mut chunk).map_err(undecodable)?;
        if read == 0 {
            break;
        }
        size += read;
        if size > limit {
            return Err(EnvelopeError::TooLarge {
                encoding: encoding.to_owned(),
                limit,
            });
        }
    }
    // It fits: inflate it into a buffer of its size.
    let mut inflated = Vec::with_capacity(size);
    flate2::read::ZlibDecoder::new(compressed)
        .take(size as u64)
        .read_to_end(&mut inflated)
        .map_err(undecodable)?;
    Ok(inflated)
}

#[cfg(test)]
#[cfg(feature = "envelopes")]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn inflates_up_to_the_cap_and_refuses_past_it() {
        // The default cap (other tests of this process do not change it).
        let at_cap = vec![b'a'; 1 << 20];
        assert_eq!(inflate_capped(&zlib(&at_cap), "e").unwrap(), at_cap);

        // 80 MiB of zeros is 80 KB of zlib: refused without inflating all of it.
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        let zeros = vec![0_u8; 1 << 20];
        for _ in 0..80 {
            encoder.write_all(&zeros).unwrap();
        }
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 200_000);
        let error = inflate_capped(&bomb, "base64_gzip_json").unwrap_err();
        assert!(matches!(
            error,
            EnvelopeError::TooLarge {
                limit: DEFAULT_MAX_INFLATED_SIZE,
                ..
            }
        ));
        assert_eq!(
            error.to_string(),
            "base64_gzip_json data inflates to more than 67108864 bytes (envelope.max_inflated_size)"
        );
    }

    #[test]
    fn corrupt_data_is_undecodable() {
        let mut data = zlib(b"{\"a\": 1}");
        let last = data.len() - 1;
        data[last] ^= 0xff;
        assert!(matches!(
            inflate_capped(&data, "e"),
            Err(EnvelopeError::Undecodable { .. })
        ));
        assert!(matches!(
            inflate_capped(b"not zlib", "e"),
            Err(EnvelopeError::Undecodable { .. })
        ));
    }
}
