//! Finding the first byte of a class, 16 bytes at a time.
//!
//! The lexer's runs are short (a metric name, a label value, a number: 5 to 60 bytes): too
//! short for `memchr`'s dispatch and set-up to pay, and one of its classes (every byte that
//! cannot be in a metric name) is not a few single bytes. Here a block of 16 bytes is
//! classified with vector compares (SSE2 on x86_64, NEON on aarch64: both always present, and
//! their intrinsics safe to call) into a bit mask whose lowest set bit is the answer. Bytes
//! after the last whole block are looked at one by one; so is everything on other targets.

/// A class of bytes to stop at.
pub(super) trait Stops: Copy {
    /// Whether the lexer stops at `c`.
    fn stops_at(self, c: u8) -> bool;
    /// The stopping bytes of a block, as [`simd::Mask`] bits.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn block(self, block: simd::Bytes) -> simd::Mask;
}

/// Any byte that cannot follow the first byte of a metric name: not `[a-zA-Z0-9_:]`.
#[derive(Clone, Copy)]
pub(super) struct NotMetricName;

/// Any of three bytes.
#[derive(Clone, Copy)]
pub(super) struct AnyOf(pub u8, pub u8, pub u8);

impl Stops for NotMetricName {
    #[inline(always)]
    fn stops_at(self, c: u8) -> bool {
        !is_metric_name_byte(c)
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[inline(always)]
    fn block(self, v: simd::Bytes) -> simd::Mask {
        use simd::*;
        let letter = in_range(or(v, splat(0x20)), b'a', b'z');
        let name = or(
            or(letter, in_range(v, b'0', b'9')),
            or(eq(v, splat(b'_')), eq(v, splat(b':'))),
        );
        !mask(name) & ALL
    }
}

impl Stops for AnyOf {
    #[inline(always)]
    fn stops_at(self, c: u8) -> bool {
        c == self.0 || c == self.1 || c == self.2
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[inline(always)]
    fn block(self, v: simd::Bytes) -> simd::Mask {
        use simd::*;
        mask(or(
            or(eq(v, splat(self.0)), eq(v, splat(self.1))),
            eq(v, splat(self.2)),
        ))
    }
}

/// The index in `bytes` of the first byte at or after `from` where `stops` stops, or
/// `bytes.len()` if there is none.
#[inline(always)]
pub(super) fn find(bytes: &[u8], mut from: usize, stops: impl Stops) -> usize {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    while let Some(block) = bytes.get(from..).and_then(<[u8]>::first_chunk::<16>) {
        let found = stops.block(simd::load(block));
        if found != 0 {
            return from + (found.trailing_zeros() / simd::BITS_PER_BYTE) as usize;
        }
        from += 16;
    }
    while from < bytes.len() && !stops.stops_at(bytes[from]) {
        from += 1;
    }
    from.min(bytes.len())
}

/// `[a-zA-Z0-9_:]`: a byte a metric name may have after its first.
#[inline(always)]
pub(super) fn is_metric_name_byte(c: u8) -> bool {
    // Both cases of letters in one range test: `c | 0x20` maps `A..=Z` onto `a..=z` and nothing
    // else onto it.
    ((c | 0x20).wrapping_sub(b'a') < 26) | (c.wrapping_sub(b'0') < 10) | (c == b'_') | (c == b':')
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(super) mod simd {
    //! SAFETY (every `unsafe` here): the intrinsics are unsafe only because a CPU might lack
    //! their instruction set; SSE2 is part of every x86_64 CPU (the target's baseline), and none
    //! of them takes a pointer.

    use std::arch::x86_64::{
        __m128i, _mm_add_epi8, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8, _mm_set_epi64x,
    };

    pub type Bytes = __m128i;
    /// One bit a byte.
    pub type Mask = u32;
    pub const BITS_PER_BYTE: u32 = 1;
    pub const ALL: Mask = 0xffff;

    #[inline(always)]
    pub fn load(block: &[u8; 16]) -> Bytes {
        let (low, high) = block.split_at(8);
        let half = |h: &[u8]| i64::from_le_bytes(h.try_into().unwrap_or_default());
        // SAFETY: see the module's note.
        unsafe { _mm_set_epi64x(half(high), half(low)) }
    }

    #[inline(always)]
    pub fn splat(c: u8) -> Bytes {
        // SAFETY: see the module's note.
        unsafe { _mm_set1_epi8(c as i8) }
    }

    #[inline(always)]
    pub fn eq(a: Bytes, b: Bytes) -> Bytes {
        // SAFETY: see the module's note.
        unsafe { _mm_cmpeq_epi8(a, b) }
    }

    #[inline(always)]
    pub fn or(a: Bytes, b: Bytes) -> Bytes {
        // SAFETY: see the module's note.
        unsafe { _mm_or_si128(a, b) }
    }

    /// Bytes in `low..=high`: SSE2 compares signed, so `low` is moved to -128 first.
    #[inline(always)]
    pub fn in_range(v: Bytes, low: u8, high: u8) -> Bytes {
        // SAFETY: see the module's note.
        unsafe {
            let moved = _mm_add_epi8(v, splat(0x80u8.wrapping_sub(low)));
            _mm_cmplt_epi8(moved, splat(0x80u8.wrapping_add(high - low + 1)))
        }
    }

    #[inline(always)]
    pub fn mask(v: Bytes) -> Mask {
        // SAFETY: see the module's note.
        unsafe { _mm_movemask_epi8(v) as u32 }
    }
}

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
pub(super) mod simd {
    //! SAFETY (every `unsafe` here): the intrinsics are unsafe only because a CPU might lack
    //! their instruction set; NEON is part of every aarch64 CPU (the target's baseline), and none
    //! of them takes a pointer.

    use std::arch::aarch64::{
        uint8x16_t, vceqq_u8, vcleq_u8, vcombine_u8, vcreate_u8, vdupq_n_u8, vget_lane_u64,
        vorrq_u8, vreinterpret_u64_u8, vreinterpretq_u16_u8, vshrn_n_u16, vsubq_u8,
    };

    pub type Bytes = uint8x16_t;
    /// Four bits a byte (NEON has no byte mask move; narrowing by 4 is the usual stand-in).
    pub type Mask = u64;
    pub const BITS_PER_BYTE: u32 = 4;
    pub const ALL: Mask = u64::MAX;

    #[inline(always)]
    pub fn load(block: &[u8; 16]) -> Bytes {
        let (low, high) = block.split_at(8);
        // SAFETY: see the module's note.
        let half =
            |h: &[u8]| unsafe { vcreate_u8(u64::from_le_bytes(h.try_into().unwrap_or_default())) };
        // SAFETY: see the module's note.
        unsafe { vcombine_u8(half(low), half(high)) }
    }

    #[inline(always)]
    pub fn splat(c: u8) -> Bytes {
        // SAFETY: see the module's note.
        unsafe { vdupq_n_u8(c) }
    }

    #[inline(always)]
    pub fn eq(a: Bytes, b: Bytes) -> Bytes {
        // SAFETY: see the module's note.
        unsafe { vceqq_u8(a, b) }
    }

    #[inline(always)]
    pub fn or(a: Bytes, b: Bytes) -> Bytes {
        // SAFETY: see the module's note.
        unsafe { vorrq_u8(a, b) }
    }

    #[inline(always)]
    pub fn in_range(v: Bytes, low: u8, high: u8) -> Bytes {
        // SAFETY: see the module's note.
        unsafe { vcleq_u8(vsubq_u8(v, splat(low)), splat(high - low)) }
    }

    #[inline(always)]
    pub fn mask(v: Bytes) -> Mask {
        // SAFETY: see the module's note.
        unsafe {
            vget_lane_u64::<0>(vreinterpret_u64_u8(vshrn_n_u16::<4>(vreinterpretq_u16_u8(
                v,
            ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_stop_in_blocks_and_in_the_tail() {
        let text = b"abcdefghijklmnopqrstuvwxyz_0123456789:ABC{x";
        assert_eq!(find(text, 0, NotMetricName), 41);
        assert_eq!(find(text, 41, NotMetricName), 41);
        assert_eq!(find(text, 42, NotMetricName), 43);
        assert_eq!(find(b"short", 0, NotMetricName), 5);
        assert_eq!(find(b"sho-rt", 0, NotMetricName), 3);
        assert_eq!(find(b"", 0, NotMetricName), 0);
        assert_eq!(find(b"abc", 7, NotMetricName), 3);
        let quote_or_brace = AnyOf(b'"', b'}', b'\n');
        for c in 0..=255u8 {
            let name = c.is_ascii_alphanumeric() || c == b'_' || c == b':';
            assert_eq!(is_metric_name_byte(c), name, "{c}");
            let mut bytes = [b'a'; 40];
            bytes[33] = c;
            bytes[17] = c;
            bytes[3] = c;
            for (from, want) in [(0, 3), (4, 17), (18, 33), (34, 40)] {
                let got = find(&bytes, from, NotMetricName);
                assert_eq!(got, if name { 40 } else { want }, "{c} from {from}");
                let got = find(&bytes, from, quote_or_brace);
                let stop = matches!(c, b'"' | b'}' | b'\n');
                assert_eq!(got, if stop { want } else { 40 }, "{c} from {from}");
            }
        }
    }
}
