//! gzip and zstd for request bodies. Decompression is bounded: a body that inflates past the
//! limit is refused as soon as the limit is crossed, so a decompression bomb never expands whole.

use std::io::{Read, Write};

use bytes::Bytes;

use crate::memory::{Charge, OverBudget};

/// Content encodings accepted on OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
}

impl Encoding {
    /// The `Content-Encoding` / `grpc-encoding` value; `None` for identity.
    pub fn header_value(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Zstd => Some("zstd"),
        }
    }

    /// Parses a `Content-Encoding` header value; `None` for encodings we do not accept.
    pub fn from_header(value: Option<&str>) -> Option<Encoding> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Some(Encoding::Identity),
            Some("gzip") | Some("x-gzip") => Some(Encoding::Gzip),
            Some("zstd") => Some(Encoding::Zstd),
            Some(_) => None,
        }
    }
}

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The body inflates past the request size limit: the sender's request is too large.
    #[error("request exceeds the size limit of {limit} bytes after decompression")]
    TooLarge { limit: usize },
    /// Memory is short: the client should retry.
    #[error(transparent)]
    Memory(#[from] OverBudget),
    /// The body is not valid data for its declared encoding: the sender's mistake.
    #[error("body is not valid {encoding:?} data: {source}")]
    Corrupt {
        encoding: Encoding,
        #[source]
        source: std::io::Error,
    },
}

/// Decompresses `body`, refusing it once the output would exceed `limit` bytes, and growing
/// `charge` before each growth of the output: a body is refused for memory before it inflates
/// past what the budget has.
// The one place the decompressors of `clippy.toml` are allowed: their output is bounded here.
#[allow(clippy::disallowed_methods)]
pub fn decompress(
    encoding: Encoding,
    body: Bytes,
    limit: usize,
    charge: &mut Charge,
) -> Result<Bytes, DecompressError> {
    let corrupt = |source| DecompressError::Corrupt { encoding, source };
    let mut reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity => {
            if body.len() > limit {
                return Err(DecompressError::TooLarge { limit });
            }
            return Ok(body);
        }
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        Encoding::Zstd => Box::new(zstd::stream::read::Decoder::new(&body[..]).map_err(corrupt)?),
    };
    let mut out = Vec::new();
    let mut more = body.len().saturating_mul(4).clamp(1, limit.saturating_add(1));
    loop {
        // While the buffer moves to a larger one, both are held: charge both for that time.
        let old = out.capacity();
        charge.grow(more + old)?;
        out.reserve_exact(more);
        charge.set(charge.bytes() - old);
        let room = out.capacity() - out.len();
        let read = (&mut reader).take(room as u64).read_to_end(&mut out).map_err(corrupt)?;
        if out.len() > limit {
            return Err(DecompressError::TooLarge { limit });
        }
        if read < room {
            return Ok(Bytes::from(out));
        }
        more = out.capacity().min(limit.saturating_add(1) - out.len());
    }
}

/// Compresses the concatenation of `parts` at `level`, appending to `out`.
pub fn compress<B: AsRef<[u8]>>(encoding: Encoding, level: u32, parts: &[B], out: &mut Vec<u8>) -> std::io::Result<()> {
    match encoding {
        Encoding::Identity => parts.iter().for_each(|part| out.extend_from_slice(part.as_ref())),
        Encoding::Gzip => gzip_parts(level, parts, out)?,
        Encoding::Zstd => {
            let level = i32::try_from(level).unwrap_or(1);
            let mut encoder = zstd::stream::write::Encoder::new(out, level)?;
            parts.iter().try_for_each(|part| encoder.write_all(part.as_ref()))?;
            encoder.finish()?;
        }
    }
    Ok(())
}

/// A gzip member header: deflate, no name or time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// gzip through a deflate state kept per thread and level. A new state per batch zeroed and
/// page-faulted its tables every time, and page faults serialise threads on the process's
/// memory map (`cargo bench --bench pipeline encode_grpc`).
fn gzip_parts<B: AsRef<[u8]>>(level: u32, parts: &[B], out: &mut Vec<u8>) -> std::io::Result<()> {
    use flate2::{Compress, Compression, FlushCompress};
    thread_local! {
        static DEFLATE: std::cell::RefCell<Option<(u32, Compress)>> = const { std::cell::RefCell::new(None) };
    }
    DEFLATE.with_borrow_mut(|kept| {
        let compress = match kept {
            Some((kept_level, compress)) if *kept_level == level => {
                compress.reset();
                compress
            }
            _ => &mut kept.insert((level, Compress::new(Compression::new(level), false))).1,
        };
        out.extend_from_slice(&GZIP_HEADER);
        let mut crc = flate2::Crc::new();
        for part in parts {
            crc.update(part.as_ref());
            deflate(compress, part.as_ref(), out, FlushCompress::None)?;
        }
        deflate(compress, &[], out, FlushCompress::Finish)?;
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&crc.amount().to_le_bytes());
        Ok(())
    })
}

/// Feeds all of `input` to `compress`, growing `out` as needed; with `Finish`, until the
/// stream has ended.
fn deflate(
    compress: &mut flate2::Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: flate2::FlushCompress,
) -> std::io::Result<()> {
    let finishing = flush == flate2::FlushCompress::Finish;
    loop {
        out.reserve(input.len() / 2 + 4096);
        let before = compress.total_in();
        let status = compress
            .compress_vec(input, out, flush)
            .map_err(std::io::Error::other)?;
        input = &input[(compress.total_in() - before) as usize..];
        let done = if finishing {
            status == flate2::Status::StreamEnd
        } else {
            input.is_empty()
        };
        if done {
            return Ok(());
        }
    }
}

/// gzip at the fastest level, as fleetpipe's exporters send by default.
pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    compress(Encoding::Gzip, 1, &[data], &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryBudget, Part};

    fn charge() -> Charge {
        MemoryBudget::unlimited().charge(Part::Requests, 0)
    }

    /// Guarantees: gzip and zstd round-trip below the limit.
    #[test]
    fn round_trips() {
        let data = b"spans and more spans".repeat(100);
        for (encoding, packed) in [
            (Encoding::Gzip, gzip(&data).expect("gzip")),
            (Encoding::Zstd, {
                let mut out = Vec::new();
                compress(Encoding::Zstd, 3, &[&data], &mut out).expect("zstd");
                out
            }),
        ] {
            let out = decompress(encoding, Bytes::from(packed), data.len(), &mut charge()).expect("inflate");
            assert_eq!(&out[..], &data[..]);
        }
    }

    /// Scenario: one thread gzips bodies of several parts at levels 1, 9, 1 and 6, reusing
    /// its deflate state. Guarantees: each body inflates to exactly the joined parts.
    #[test]
    fn reused_gzip_state_round_trips() {
        let parts: Vec<Vec<u8>> = (0..4u8)
            .map(|i| format!("part {i} ").repeat(5000).into_bytes())
            .collect();
        let joined = parts.concat();
        for level in [1, 9, 1, 6] {
            let mut out = Vec::new();
            compress(Encoding::Gzip, level, &parts, &mut out).expect("gzip");
            assert!(out.len() < joined.len() / 10, "level {level} compresses");
            let inflated = decompress(Encoding::Gzip, Bytes::from(out), joined.len(), &mut charge()).expect("inflate");
            assert_eq!(&inflated[..], &joined[..], "level {level}");
        }
    }

    /// Scenario: 64 MiB of zeros gzipped to ~64 KiB, with a 1 MiB limit.
    /// Guarantees: refused as too large, not as corrupt.
    #[test]
    fn refuses_a_bomb() {
        let bomb = gzip(&vec![0u8; 64 << 20]).expect("gzip");
        assert!(bomb.len() < 1 << 20);
        let error = decompress(Encoding::Gzip, Bytes::from(bomb), 1 << 20, &mut charge()).expect_err("bomb");
        assert!(matches!(error, DecompressError::TooLarge { .. }), "{error}");
    }

    /// Guarantees: garbage under a gzip header is reported as corrupt.
    #[test]
    fn reports_corrupt_data() {
        let error =
            decompress(Encoding::Gzip, Bytes::from_static(b"not gzip"), 100, &mut charge()).expect_err("corrupt");
        assert!(matches!(error, DecompressError::Corrupt { .. }), "{error}");
    }

    /// Scenario: a 64 MiB gzip bomb against a budget whose soft limit is 8 MiB, with a 64 MiB
    /// size limit. Guarantees: refused for memory, and nothing stays charged.
    #[test]
    fn refuses_a_body_inflating_past_the_budget() {
        let bomb = gzip(&vec![0u8; 64 << 20]).expect("gzip");
        let budget = std::sync::Arc::new(MemoryBudget::counting(10 << 20));
        let mut charge = budget.admit(Part::Requests, bomb.len()).expect("room for the body");
        let error = decompress(Encoding::Gzip, Bytes::from(bomb), 64 << 20, &mut charge).expect_err("refused");
        assert!(matches!(error, DecompressError::Memory(_)), "{error}");
        assert!(budget.held() <= 8 << 20, "{} bytes held", budget.held());
        drop(charge);
        assert_eq!(budget.held(), 0);
    }
}
