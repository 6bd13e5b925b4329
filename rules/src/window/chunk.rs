//! A compressed run of one series' samples. Timestamps are Gorilla's (Prometheus's XOR chunks):
//! delta-of-delta in variable-width buckets, jitter within 2 ms aligned. Values take one of two
//! paths, chosen per sample by a flag bit: where this value and the previous one are decimals
//! with at most the chunk's number of digits after the point (counters, most gauges), the
//! delta-of-delta of their scaled integers — a counter at a steady rate costs two bits;
//! otherwise Gorilla's XOR with the previous value. Both sides derive the path's state from
//! the values alone, so decoding mirrors encoding exactly, bit for bit. Appends must be in
//! time order; stale markers are just values (the XOR path).

use crate::promql::value::Point;

/// Samples per chunk before a new one starts (Prometheus's 120).
pub const SAMPLES_PER_CHUNK: u16 = 120;

/// A timestamp this close to the one the series' rhythm predicts is stored as the predicted
/// one, as Prometheus aligns scrape timestamps (`scrape.timestamp-tolerance`): a scrape's few
/// milliseconds of jitter would otherwise cost two bytes a sample.
pub const TIMESTAMP_TOLERANCE_MS: i64 = 2;

/// Bytes a head chunk's stream grows by: a few samples' worth rather than doubling, since a
/// window's chunk lives long and mostly part-filled.
const GROWTH_BYTES: usize = 16;

/// A bit stream, most significant bit first, in a zero-filled boxed slice whose length is its
/// capacity (16 bytes of handle rather than a `Vec`'s 24; a window holds one per series). The
/// count of bits written is kept by the owner, beside its other small fields.
#[derive(Clone, Debug, Default)]
struct Bits(Box<[u8]>);

impl Bits {
    fn with_capacity(bytes: usize) -> Self {
        Self(vec![0; bytes].into_boxed_slice())
    }

    /// Makes room for `needed_bits` in all.
    fn reserve(&mut self, needed_bits: u32) {
        let needed = needed_bits.div_ceil(8) as usize;
        if needed > self.0.len() {
            let mut bytes = std::mem::take(&mut self.0).into_vec();
            let new_len = needed.max(bytes.len() + GROWTH_BYTES);
            bytes.reserve_exact(new_len - bytes.len());
            bytes.resize(new_len, 0);
            self.0 = bytes.into_boxed_slice();
        }
    }

    /// Keeps the first `used` bytes only (a sealed chunk grows no more).
    fn shrink(&mut self, used: usize) {
        if used < self.0.len() {
            let mut bytes = std::mem::take(&mut self.0).into_vec();
            bytes.truncate(used);
            self.0 = bytes.into_boxed_slice();
        }
    }

    /// Writes the low `n` bits of `value`, high bit first, after the first `*len` bits.
    fn push_bits(&mut self, len: &mut u32, value: u64, mut n: u8) {
        self.reserve(*len + u32::from(n));
        while n > 0 {
            let byte = (*len / 8) as usize;
            let used = (*len % 8) as u8;
            let free = 8 - used;
            let take = free.min(n);
            let chunk = ((value >> (n - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(slot) = self.0.get_mut(byte) {
                *slot |= chunk << (free - take);
            }
            *len += u32::from(take);
            n -= take;
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Reader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.position / 8)?;
        let bit = byte & (0x80 >> (self.position % 8)) != 0;
        self.position += 1;
        Some(bit)
    }

    fn bits(&mut self, n: u8) -> Option<u64> {
        let mut value = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = *self.bytes.get(self.position / 8)?;
            let offset = (self.position % 8) as u8;
            let available = 8 - offset;
            let take = available.min(left);
            let chunk = (byte >> (available - take)) & (((1u16 << take) - 1) as u8);
            value = (value << take) | u64::from(chunk);
            self.position += usize::from(take);
            left -= take;
        }
        Some(value)
    }
}

/// What every chunk keeps in the clear: its first sample, its last time, its sample count,
/// and how its values are scaled; also the head's XOR window (`leading`, `trailing`), which
/// the header's padding holds at no cost.
#[derive(Clone, Copy, Debug)]
struct Header {
    first_t: i64,
    last_t: i64,
    first_v: u64,
    count: u16,
    /// Digits after the point of the integer path (10^scale multiplies values).
    scale: u8,
    leading: u8,
    trailing: u8,
}

/// A chunk as decoding reads it, head or sealed.
#[derive(Clone, Copy)]
struct Encoded<'a> {
    header: Header,
    bits: &'a [u8],
}

/// The chunk a series appends to: its header, the encoded samples after the first, and the
/// state the next append continues from.
#[derive(Clone, Debug)]
pub struct Chunk {
    header: Header,
    last_v: u64,
    /// The delta between the last two values' scaled integers (integer path).
    last_delta_m: i64,
    bits: Bits,
    /// Bits written to `bits`.
    bit_len: u32,
    /// The delta between the last two timestamps.
    last_delta: i32,
}

/// A full chunk, read only: no append state, no spare room.
#[derive(Clone, Debug)]
pub struct SealedChunk {
    header: Header,
    bits: Box<[u8]>,
}

/// Why a sample needs a new chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// It holds [`SAMPLES_PER_CHUNK`] samples.
    Samples,
    /// The gap since the last sample does not fit the chunk's delta (about 24 days).
    Gap,
}

impl Chunk {
    pub fn new(t: i64, v: f64) -> Self {
        let scale = (0..=MAX_SCALE)
            .find(|&k| scaled(v, k).is_some())
            .unwrap_or(0);
        Self {
            header: Header {
                first_t: t,
                last_t: t,
                first_v: v.to_bits(),
                count: 1,
                scale,
                leading: u8::MAX,
                trailing: 0,
            },
            last_v: v.to_bits(),
            last_delta_m: 0,
            // Room for a dozen samples at once: growing byte by byte was a tenth of ingest.
            bits: Bits::with_capacity(GROWTH_BYTES),
            bit_len: 0,
            last_delta: 0,
        }
    }

    pub fn count(&self) -> u16 {
        self.header.count
    }

    /// Whether a sample at `t` (later than the last) needs a new chunk.
    pub fn full_for(&self, t: i64) -> Option<Full> {
        if self.header.count >= SAMPLES_PER_CHUNK {
            Some(Full::Samples)
        } else if i32::try_from(t - self.header.last_t).is_err() {
            Some(Full::Gap)
        } else {
            None
        }
    }

    pub fn last_time(&self) -> i64 {
        self.header.last_t
    }

    /// Bytes it holds: the fixed fields and the stream with its spare room.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.bits.0.len()
    }

    /// Bytes of encoded samples alone.
    pub fn encoded_bytes(&self) -> usize {
        self.bit_len.div_ceil(8) as usize
    }

    fn push_bit(&mut self, bit: bool) {
        self.bits.push_bits(&mut self.bit_len, u64::from(bit), 1);
    }

    fn push_bits(&mut self, value: u64, n: u8) {
        self.bits.push_bits(&mut self.bit_len, value, n);
    }

    /// A zero bit for 0; else a prefix of 1s and a 0 choosing the first of `widths` that
    /// holds the value (`-(2^(w-1)-1)..=2^(w-1)`), or four 1s and 64 bits.
    fn push_bucketed(&mut self, dod: i64, widths: [u8; 4]) {
        if dod == 0 {
            self.push_bit(false);
            return;
        }
        for (i, &width) in widths[..3].iter().enumerate() {
            let half = 1i64 << (width - 1);
            if (-(half - 1)..=half).contains(&dod) {
                let prefix = (1u64 << (i + 2)) - 2; // i+1 ones then a zero
                self.push_bits(prefix, i as u8 + 2);
                self.push_bits(dod as u64, width);
                return;
            }
        }
        self.push_bits(0b1111, 4);
        self.push_bits(dod as u64, 64);
    }

    /// The chunk as it is kept once full.
    pub fn seal(mut self) -> SealedChunk {
        self.bits.shrink(self.encoded_bytes());
        SealedChunk {
            header: self.header,
            bits: self.bits.0,
        }
    }

    fn encoded(&self) -> Encoded<'_> {
        Encoded {
            header: self.header,
            bits: &self.bits.0,
        }
    }

    /// Decodes the samples in `[mint, maxt]` into `out`.
    pub fn decode_into(&self, mint: i64, maxt: i64, out: &mut Vec<Point>) {
        self.encoded().decode_into(mint, maxt, out);
    }

    /// Appends a sample later than the last one, for which [`Self::full_for`] said no; returns
    /// the time stored (see [`TIMESTAMP_TOLERANCE_MS`]).
    pub fn append(&mut self, t: i64, v: f64) -> i64 {
        let last_delta = i64::from(self.last_delta);
        let mut delta = t - self.header.last_t;
        if self.header.count > 1 && (delta - last_delta).abs() <= TIMESTAMP_TOLERANCE_MS {
            delta = last_delta;
        }
        let t = self.header.last_t + delta;
        // The first delta is written as a delta of delta against 0.
        self.push_bucketed(delta - last_delta, TIME_WIDTHS);
        self.write_value(v);
        self.last_delta = i32::try_from(delta).unwrap_or(i32::MAX);
        self.header.last_t = t;
        self.header.count += 1;
        t
    }

    fn write_value(&mut self, value: f64) {
        let m = scaled(value, self.header.scale);
        let last_m = scaled(f64::from_bits(self.last_v), self.header.scale);
        if let (Some(m), Some(last_m)) = (m, last_m) {
            self.push_bit(false);
            let delta = m - last_m;
            self.push_bucketed(delta - self.last_delta_m, VALUE_WIDTHS);
            self.last_delta_m = delta;
            self.last_v = value.to_bits();
            return;
        }
        self.last_delta_m = 0;
        self.push_bit(true);
        let v = value.to_bits();
        let xor = v ^ self.last_v;
        self.last_v = v;
        if xor == 0 {
            self.push_bit(false);
            return;
        }
        self.push_bit(true);
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.header.leading != u8::MAX
            && leading >= self.header.leading
            && trailing >= self.header.trailing
        {
            self.push_bit(false);
            let significant = 64 - self.header.leading - self.header.trailing;
            self.push_bits(xor >> self.header.trailing, significant);
        } else {
            self.header.leading = leading;
            self.header.trailing = trailing;
            self.push_bit(true);
            self.push_bits(u64::from(leading), 5);
            let significant = 64 - leading - trailing;
            // 64 significant bits are written as 0 (6 bits cannot hold 64).
            self.push_bits(u64::from(significant) & 0x3f, 6);
            self.push_bits(xor >> trailing, significant);
        }
    }
}

impl SealedChunk {
    pub fn last_time(&self) -> i64 {
        self.header.last_t
    }

    pub fn count(&self) -> u16 {
        self.header.count
    }

    /// Bytes it holds: the fixed fields and the stream.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.bits.len()
    }

    /// Bytes of encoded samples alone.
    pub fn encoded_bytes(&self) -> usize {
        self.bits.len()
    }

    /// Decodes the samples in `[mint, maxt]` into `out`.
    pub fn decode_into(&self, mint: i64, maxt: i64, out: &mut Vec<Point>) {
        Encoded {
            header: self.header,
            bits: &self.bits,
        }
        .decode_into(mint, maxt, out);
    }
}

impl Encoded<'_> {
    fn decode_into(self, mint: i64, maxt: i64, out: &mut Vec<Point>) {
        if self.header.last_t < mint || self.header.first_t > maxt {
            return;
        }
        let mut reader = Reader {
            bytes: self.bits,
            position: 0,
        };
        let mut t = self.header.first_t;
        let mut bits_v = self.header.first_v;
        let mut v = f64::from_bits(bits_v);
        if t >= mint && t <= maxt {
            out.push(Point { t, v });
        }
        let (mut delta, mut leading, mut trailing) = (0i64, 0u8, 0u8);
        let mut last_m = scaled(v, self.header.scale);
        let mut last_delta_m = 0i64;
        for _ in 1..self.header.count {
            let Some(dod) = read_delta_of_delta(&mut reader) else {
                return;
            };
            delta += dod;
            t += delta;
            match reader.bit() {
                Some(false) => {
                    // The integer path.
                    let (Some(dod), Some(previous)) =
                        (read_value_delta_of_delta(&mut reader), last_m)
                    else {
                        return;
                    };
                    last_delta_m += dod;
                    let m = previous + last_delta_m;
                    last_m = Some(m);
                    v = unscaled(m, self.header.scale);
                    bits_v = v.to_bits();
                }
                Some(true) => match reader.bit() {
                    Some(false) => {
                        last_delta_m = 0;
                        last_m = scaled(v, self.header.scale);
                    }
                    Some(true) => {
                        let Some(control) = reader.bit() else { return };
                        if control {
                            let (Some(l), Some(s)) = (reader.bits(5), reader.bits(6)) else {
                                return;
                            };
                            leading = l as u8;
                            let significant = if s == 0 { 64 } else { s as u8 };
                            trailing = 64 - leading - significant;
                        }
                        let significant = 64 - leading - trailing;
                        let Some(value) = reader.bits(significant) else {
                            return;
                        };
                        bits_v ^= value << trailing;
                        v = f64::from_bits(bits_v);
                        last_delta_m = 0;
                        last_m = scaled(v, self.header.scale);
                    }
                    None => return,
                },
                None => return,
            }
            if t > maxt {
                return;
            }
            if t >= mint {
                out.push(Point { t, v });
            }
        }
    }
}

/// Most digits after the point the integer path uses.
const MAX_SCALE: u8 = 3;

const POWERS_OF_TEN: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];

/// `v` as an integer of `10^-scale` units, if that gives back exactly `v`.
fn scaled(v: f64, scale: u8) -> Option<i64> {
    let factor = POWERS_OF_TEN[usize::from(scale)];
    let m = (v * factor).round();
    if !m.is_finite() || m.abs() >= 9_007_199_254_740_992.0 {
        return None;
    }
    let m = m as i64;
    (unscaled(m, scale).to_bits() == v.to_bits()).then_some(m)
}

fn unscaled(m: i64, scale: u8) -> f64 {
    m as f64 / POWERS_OF_TEN[usize::from(scale)]
}

/// Widths of the timestamps' delta-of-delta buckets (Prometheus's).
const TIME_WIDTHS: [u8; 4] = [14, 17, 20, 64];
/// Widths of the values' delta-of-delta buckets: small steps of counters first.
const VALUE_WIDTHS: [u8; 4] = [8, 13, 24, 64];

fn read_value_delta_of_delta(reader: &mut Reader<'_>) -> Option<i64> {
    read_bucketed(reader, VALUE_WIDTHS)
}

fn read_delta_of_delta(reader: &mut Reader<'_>) -> Option<i64> {
    read_bucketed(reader, TIME_WIDTHS)
}

/// A zero bit, or a prefix of 1s (up to four) choosing one of `widths`, then that many bits.
fn read_bucketed(reader: &mut Reader<'_>, widths: [u8; 4]) -> Option<i64> {
    let mut prefix = 0;
    while prefix < 4 && reader.bit()? {
        prefix += 1;
    }
    if prefix == 0 {
        return Some(0);
    }
    let width = widths[prefix - 1];
    let raw = reader.bits(width)?;
    if width == 64 {
        return Some(raw as i64);
    }
    // The bucket holds -(2^(w-1)-1)..=2^(w-1) (see `push_bucketed`): 2^(w-1) itself is positive,
    // only what lies above it is negative.
    let (raw, half) = (raw as i64, 1i64 << (width - 1));
    Some(if raw > half {
        raw - (1i64 << width)
    } else {
        raw
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn roundtrip(samples: &[(i64, f64)]) -> Vec<Point> {
        let mut chunks = vec![Chunk::new(samples[0].0, samples[0].1)];
        for &(t, v) in &samples[1..] {
            match chunks.last_mut() {
                Some(chunk) if chunk.full_for(t).is_none() => {
                    chunk.append(t, v);
                }
                _ => chunks.push(Chunk::new(t, v)),
            }
        }
        let mut out = Vec::new();
        let (head, sealed) = chunks.split_last().unwrap();
        for chunk in sealed {
            chunk
                .clone()
                .seal()
                .decode_into(i64::MIN, i64::MAX, &mut out);
        }
        head.decode_into(i64::MIN, i64::MAX, &mut out);
        out
    }

    proptest! {
        #[test]
        fn every_sample_comes_back_bit_for_bit(
            start in -1_000_000_000_000i64..1_000_000_000_000,
            steps in proptest::collection::vec((0i64..10_000_000_000, any::<u64>()), 1..150),
        ) {
            let mut samples = vec![(start, f64::from_bits(steps[0].1))];
            for &(step, bits) in &steps[1..] {
                let t = samples.last().unwrap().0 + step + 1;
                samples.push((t, f64::from_bits(bits)));
            }
            let got = roundtrip(&samples);
            prop_assert_eq!(got.len(), samples.len());
            for (g, (t, v)) in got.iter().zip(&samples) {
                prop_assert!((g.t - *t).abs() <= TIMESTAMP_TOLERANCE_MS * 150, "{} vs {t}", g.t);
                prop_assert_eq!(g.v.to_bits(), v.to_bits());
            }
        }
    }

    /// A bucket holds `-(2^(w-1)-1)..=2^(w-1)`, as Prometheus's: its top value once came back
    /// negative (a value step of +0.128 at scale 3 read as -0.128; found by the property test
    /// below), and a timestamp's delta of delta of exactly 8,192 ms would have too.
    #[test]
    fn a_delta_of_delta_at_the_top_of_its_bucket_comes_back_positive() {
        let values = [0.001, 5e-324, -0.274, -0.146];
        let times = [0, 15_000, 30_000 + 8_192, 45_000 + 2 * 8_192 + 65_536];
        let samples: Vec<(i64, f64)> = times.into_iter().zip(values).collect();
        let got = roundtrip(&samples);
        assert_eq!(got.len(), samples.len());
        for (g, (t, v)) in got.iter().zip(&samples) {
            assert_eq!((g.t, g.v.to_bits()), (*t, v.to_bits()));
        }
    }

    proptest! {
        #[test]
        fn decimal_values_come_back_bit_for_bit(
            values in proptest::collection::vec(prop_oneof![
                (-1_000_000i64..1_000_000).prop_map(|m| m as f64),
                (-1_000_000i64..1_000_000).prop_map(|m| m as f64 / 100.0),
                (-1_000i64..1_000).prop_map(|m| m as f64 / 1000.0),
                any::<u64>().prop_map(f64::from_bits),
                Just(-0.0),
                Just(f64::NAN),
            ], 1..150),
        ) {
            let samples: Vec<(i64, f64)> = values.iter().enumerate().map(|(i, v)| (i as i64 * 15_000, *v)).collect();
            let got = roundtrip(&samples);
            prop_assert_eq!(got.len(), samples.len());
            for (g, (_, v)) in got.iter().zip(&samples) {
                prop_assert_eq!(g.v.to_bits(), v.to_bits());
            }
        }
    }

    #[test]
    fn chunks_stay_small_as_a_window_holds_one_or_two_a_series() {
        assert!(
            std::mem::size_of::<Chunk>() <= 72,
            "{}",
            std::mem::size_of::<Chunk>()
        );
        assert!(std::mem::size_of::<SealedChunk>() <= 48);
    }

    #[test]
    fn a_regular_scrape_costs_under_two_bytes_a_sample() {
        let mut chunk = Chunk::new(1_700_000_000_000, 0.0);
        let mut v = 0.0;
        for i in 1..120 {
            v += 10.0;
            chunk.append(1_700_000_000_000 + i * 15_000 + (i % 3), v);
        }
        let encoded = chunk.encoded_bytes();
        assert!(encoded < 240, "{encoded} bytes for 120 samples");
        let mut out = Vec::new();
        chunk.decode_into(i64::MIN, i64::MAX, &mut out);
        assert_eq!(out.len(), 120);
        for (i, p) in out.iter().enumerate() {
            let real = 1_700_000_000_000 + i as i64 * 15_000 + (i as i64 % 3);
            assert!(
                (p.t - real).abs() <= TIMESTAMP_TOLERANCE_MS,
                "sample {i}: {} for {real}",
                p.t
            );
            assert_eq!(p.v, i as f64 * 10.0);
        }
        let mut window = Vec::new();
        chunk.decode_into(out[10].t, out[20].t, &mut window);
        assert_eq!(window.len(), 11);
        let sealed = chunk.seal();
        assert_eq!(sealed.bytes(), std::mem::size_of::<SealedChunk>() + encoded);
        let mut again = Vec::new();
        sealed.decode_into(i64::MIN, i64::MAX, &mut again);
        assert_eq!(again, out);
    }
}
