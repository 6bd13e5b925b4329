//! Bounded decompression of received bodies (OTLP/HTTP `Content-Encoding`, gRPC messages).
//!
//! Contract: a body is inflated into chunks whose total never passes `limit`, and every chunk is
//! paid for (the caller's budget, `max_in_flight_bytes` in the receiver) before it is allocated.
//! A small body that inflates hugely (a "zip bomb") therefore costs at most its limit and its
//! budget: it is stopped at `limit + 1` bytes ([`InflateError::TooLarge`], answered 413), or as
//! soon as the budget has no room ([`InflateError::NoBudget`], answered retry-later). Chunks are
//! never reallocated or copied, so no moment holds twice the output. The result is read in place
//! as a [`bytes::Buf`] (prost decodes from it directly). Chunks are anonymous memory maps, not
//! allocator memory: dropping them unmaps them, so the process's memory falls back at once
//! (an allocator would keep the pages with the thread that inflated).
//!
//! A body that states its size (gzip's trailer of its last member, a zstd frame header's
//! content size) and states more than `limit` is refused before anything is inflated: the size
//! is a lower bound of what it would inflate to, so the refusal is never wrong. One that hides
//! its size costs at most the budget above. gzip bodies may have several members (RFC 1952).

use std::collections::VecDeque;
use std::io::{self, Read};

use bytes::{Buf, Bytes};

/// The largest zstd window accepted (8 MiB, what level 19 uses; senders at usual levels use
/// 1-2 MiB). A frame asking for more is refused as corrupt.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;
/// What a zstd decoder holds besides its window (block buffers and state), roughly.
const ZSTD_DECODER_BYTES: usize = 128 * 1024;
/// What a gzip decoder holds: its 32 KiB window and state, roughly.
const GZIP_DECODER_BYTES: usize = 64 * 1024;

/// The first chunk's size; each next one is twice the last, up to [`MAX_CHUNK`].
const FIRST_CHUNK: usize = 64 * 1024;
const MAX_CHUNK: usize = 4 * 1024 * 1024;

/// Why a body could not be inflated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InflateError {
    #[error("decompressed body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("no room in the bytes in flight to decompress the body")]
    NoBudget,
    #[error("{encoding}: {message}")]
    Corrupt {
        encoding: &'static str,
        message: String,
    },
    #[error("unsupported encoding {0:?}")]
    Unsupported(String),
}

/// A compression the receivers accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Zstd,
}

impl Encoding {
    /// `None` for no compression (`identity` or empty); an error for one not supported.
    pub fn parse(name: &str) -> Result<Option<Self>, InflateError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(None),
            "gzip" | "x-gzip" => Ok(Some(Encoding::Gzip)),
            "zstd" => Ok(Some(Encoding::Zstd)),
            other => Err(InflateError::Unsupported(other.to_owned())),
        }
    }

    /// The bytes every body in this format starts with.
    fn magic(self) -> &'static [u8] {
        match self {
            Encoding::Gzip => &[0x1f, 0x8b],
            Encoding::Zstd => &[0x28, 0xb5, 0x2f, 0xfd],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
        }
    }
}

/// Inflated bytes in chunks, read as one [`Buf`].
#[derive(Debug, Default)]
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: usize,
}

impl Chunks {
    /// One chunk: a body that was not compressed.
    pub fn whole(bytes: Bytes) -> Self {
        let remaining = bytes.len();
        Self {
            chunks: VecDeque::from([bytes]),
            remaining,
        }
    }

    pub fn len(&self) -> usize {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl Buf for Chunks {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.chunks.front().map_or(&[], |c| c.as_ref())
    }

    fn advance(&mut self, mut cnt: usize) {
        cnt = cnt.min(self.remaining);
        self.remaining -= cnt;
        while cnt > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.chunks.pop_front();
        }
    }
}

/// Inflates `input` per `encoding` into at most `limit` bytes. `pay(n)` is asked before `n`
/// more bytes are allocated; `false` stops with [`InflateError::NoBudget`].
pub fn inflate(
    encoding: Encoding,
    input: &[u8],
    limit: usize,
    pay: &mut dyn FnMut(usize) -> bool,
) -> Result<Chunks, InflateError> {
    let corrupt = |e: io::Error| InflateError::Corrupt {
        encoding: encoding.name(),
        message: e.to_string(),
    };
    if !input.starts_with(encoding.magic()) {
        return Err(InflateError::Corrupt {
            encoding: encoding.name(),
            message: "not in this format (no magic number)".into(),
        });
    }
    if stated_size(encoding, input).is_some_and(|n| n > limit as u64) {
        return Err(InflateError::TooLarge { limit });
    }
    // The decoder's own memory (a zstd window can be several MiB) is paid for like output.
    if !pay(decoder_bytes(encoding, input)) {
        return Err(InflateError::NoBudget);
    }
    match encoding {
        Encoding::Gzip => read_chunks(flate2::read::MultiGzDecoder::new(input), limit, pay),
        Encoding::Zstd => {
            let mut context = ZstdContexts::take().map_err(corrupt)?;
            let decoder = zstd::stream::read::Decoder::with_context(input, &mut context);
            let out = read_chunks(decoder, limit, pay);
            ZstdContexts::give_back(context);
            out
        }
    }
    .map_err(|e| match e {
        ReadError::Io(e) => corrupt(e),
        ReadError::Inflate(e) => e,
    })
}

/// The size the body says it inflates to at least, where its format states one.
fn stated_size(encoding: Encoding, input: &[u8]) -> Option<u64> {
    match encoding {
        // ISIZE: the last member's length modulo 2^32, so the whole is at least this.
        Encoding::Gzip => input
            .len()
            .checked_sub(4)
            .and_then(|at| input.get(at..))
            .and_then(|t| <[u8; 4]>::try_from(t).ok())
            .map(|t| u64::from(u32::from_le_bytes(t))),
        Encoding::Zstd => zstd::zstd_safe::get_frame_content_size(input)
            .ok()
            .flatten(),
    }
}

/// What the decoder of `input` holds while it works.
fn decoder_bytes(encoding: Encoding, input: &[u8]) -> usize {
    match encoding {
        Encoding::Gzip => GZIP_DECODER_BYTES,
        Encoding::Zstd => {
            let max = 1usize << ZSTD_WINDOW_LOG_MAX;
            // A later frame could ask for a larger window than the first: assume the largest.
            let one_frame =
                zstd::zstd_safe::find_frame_compressed_size(input).is_ok_and(|n| n == input.len());
            let window = if one_frame {
                zstd_window(input).unwrap_or(max).min(max)
            } else {
                max
            };
            window + ZSTD_DECODER_BYTES
        }
    }
}

/// The window a zstd frame's header asks for (RFC 8878, 3.1.1.1).
fn zstd_window(input: &[u8]) -> Option<usize> {
    let descriptor = *input.get(4)?;
    if descriptor & 0x20 != 0 {
        // Single segment: the window is the content size.
        let size = zstd::zstd_safe::get_frame_content_size(input).ok()??;
        return usize::try_from(size).ok();
    }
    let window = *input.get(5)?;
    let base = 1usize << (10 + u32::from(window >> 3));
    Some(base + (base / 8) * usize::from(window & 7))
}

/// zstd decoding contexts kept for reuse, one per core at most. A context keeps its window
/// (up to 8 MiB, from the C allocator) between frames: reusing it means that memory is taken
/// once per core instead of once per request, where the C allocator would keep each freed
/// window in its arenas.
struct ZstdContexts;

static ZSTD_CONTEXTS: std::sync::Mutex<Vec<zstd::zstd_safe::DCtx<'static>>> =
    std::sync::Mutex::new(Vec::new());

impl ZstdContexts {
    fn take() -> io::Result<zstd::zstd_safe::DCtx<'static>> {
        let kept = ZSTD_CONTEXTS.lock().ok().and_then(|mut c| c.pop());
        if let Some(context) = kept {
            return Ok(context);
        }
        let mut context = zstd::zstd_safe::DCtx::try_create()
            .ok_or_else(|| io::Error::other("cannot create a zstd context"))?;
        context
            .set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(
                ZSTD_WINDOW_LOG_MAX,
            ))
            .map_err(|code| io::Error::other(zstd::zstd_safe::get_error_name(code)))?;
        Ok(context)
    }

    fn give_back(context: zstd::zstd_safe::DCtx<'static>) {
        let keep = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        if let Ok(mut kept) = ZSTD_CONTEXTS.lock() {
            if kept.len() < keep {
                kept.push(context);
            }
        }
    }
}

enum ReadError {
    Io(io::Error),
    Inflate(InflateError),
}

fn read_chunks(
    mut reader: impl Read,
    limit: usize,
    pay: &mut dyn FnMut(usize) -> bool,
) -> Result<Chunks, ReadError> {
    let mut out = Chunks::default();
    let mut size = FIRST_CHUNK;
    loop {
        // The room left under the limit, plus one byte that tells "exactly the limit" from
        // "over it".
        let want = size.min(limit - out.remaining + 1);
        if !pay(want) {
            return Err(ReadError::Inflate(InflateError::NoBudget));
        }
        let mut chunk = memmap2::MmapMut::map_anon(want).map_err(ReadError::Io)?;
        let mut filled = 0;
        while filled < want {
            match reader.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        out.remaining += filled;
        if out.remaining > limit {
            return Err(ReadError::Inflate(InflateError::TooLarge { limit }));
        }
        if filled > 0 {
            out.chunks
                .push_back(Bytes::from_owner(chunk).slice(..filled));
        }
        if filled < want {
            return Ok(out);
        }
        size = (size * 2).min(MAX_CHUNK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = e.write_all(data);
        e.finish().unwrap_or_default()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(data, 3).unwrap_or_default()
    }

    fn collect(mut c: Chunks) -> Vec<u8> {
        let mut v = Vec::new();
        while c.has_remaining() {
            let n = c.chunk().len();
            v.extend_from_slice(c.chunk());
            c.advance(n);
        }
        v
    }

    #[test]
    fn round_trips_across_chunk_boundaries_for_both_encodings() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        for (encoding, body) in [(Encoding::Gzip, gzip(&data)), (Encoding::Zstd, zstd(&data))] {
            let mut paid = 0;
            let out = inflate(encoding, &body, data.len(), &mut |n| {
                paid += n;
                true
            });
            let out = out.map(collect);
            assert_eq!(out.as_deref(), Ok(&data[..]), "{encoding:?}");
            // Paid for what was allocated: the data, one byte of probe, and the decoder.
            let decoder = decoder_bytes(encoding, &body);
            assert!(
                paid <= data.len() + 1 + decoder,
                "{encoding:?}: paid {paid}"
            );
            assert!(
                decoder <= (1 << 20) + ZSTD_DECODER_BYTES,
                "{encoding:?}: {decoder}"
            );
        }
    }

    #[test]
    fn exactly_the_limit_is_taken_and_one_byte_more_is_refused() {
        let data = vec![7u8; 300_000];
        for encoding in [Encoding::Gzip, Encoding::Zstd] {
            let body = match encoding {
                Encoding::Gzip => gzip(&data),
                Encoding::Zstd => zstd(&data),
            };
            let ok = inflate(encoding, &body, 300_000, &mut |_| true).map(|c| c.len());
            assert_eq!(ok, Ok(300_000));
            let over = inflate(encoding, &body, 299_999, &mut |_| true).map(|c| c.len());
            assert_eq!(over, Err(InflateError::TooLarge { limit: 299_999 }));
        }
    }

    #[test]
    fn a_bomb_costs_at_most_its_limit_and_stops_when_the_budget_does() {
        let bomb = gzip(&vec![0u8; 64 << 20]);
        let mut paid = 0;
        let r = inflate(Encoding::Gzip, &bomb, 1 << 20, &mut |n| {
            paid += n;
            true
        });
        assert_eq!(
            r.map(|c| c.len()),
            Err(InflateError::TooLarge { limit: 1 << 20 })
        );
        assert!(paid <= (1 << 20) + 1 + GZIP_DECODER_BYTES, "paid {paid}");
        let mut budget = 200_000usize;
        let r = inflate(
            Encoding::Zstd,
            &zstd(&vec![0u8; 8 << 20]),
            64 << 20,
            &mut |n| budget.checked_sub(n).map(|left| budget = left).is_some(),
        );
        assert_eq!(r.map(|c| c.len()), Err(InflateError::NoBudget));
    }

    #[test]
    fn a_body_that_states_a_size_over_the_limit_is_refused_before_inflating() {
        let stated = gzip(&vec![0u8; 2 << 20]);
        let mut paid = 0;
        let r = inflate(Encoding::Gzip, &stated, 1 << 20, &mut |n| {
            paid += n;
            true
        });
        assert_eq!(
            r.map(|c| c.len()),
            Err(InflateError::TooLarge { limit: 1 << 20 })
        );
        assert_eq!(paid, 0, "nothing allocated");
        // A second, empty member hides the first one's size: inflated, bounded, refused.
        let hidden = [stated.clone(), gzip(b"")].concat();
        let r = inflate(Encoding::Gzip, &hidden, 1 << 20, &mut |n| {
            paid += n;
            true
        });
        assert_eq!(
            r.map(|c| c.len()),
            Err(InflateError::TooLarge { limit: 1 << 20 })
        );
        assert!(
            paid > 0 && paid <= (1 << 20) + 1 + GZIP_DECODER_BYTES,
            "paid {paid}"
        );
        // Both members of a multi-member body are read.
        let two = [gzip(b"hello "), gzip(b"world")].concat();
        let r = inflate(Encoding::Gzip, &two, 100, &mut |_| true).map(collect);
        assert_eq!(r.as_deref(), Ok(&b"hello world"[..]));
    }

    #[test]
    fn garbage_and_unknown_encodings_are_errors_not_panics() {
        assert!(matches!(
            inflate(Encoding::Gzip, b"not gzip at all", 1000, &mut |_| true),
            Err(InflateError::Corrupt { .. })
        ));
        assert!(matches!(
            inflate(Encoding::Zstd, b"not zstd at all", 1000, &mut |_| true),
            Err(InflateError::Corrupt { .. })
        ));
        assert_eq!(
            Encoding::parse("br"),
            Err(InflateError::Unsupported("br".into()))
        );
        assert_eq!(Encoding::parse(""), Ok(None));
        assert_eq!(Encoding::parse("GZIP"), Ok(Some(Encoding::Gzip)));
    }
}
