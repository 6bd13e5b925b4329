//! Histograms as CloudWatch takes them: cumulative bucket counts to per-interval counts, and
//! buckets to (representative value, count) pairs.
//!
//! A bucket's representative value is the middle of its bounds; the open-ended first and last
//! buckets of an explicit histogram are represented by their finite bound. Exponential buckets
//! `(base^i, base^(i+1)]` are represented by their middle too, negative ones mirrored, and the
//! zero bucket by 0.

use super::deltas::Cumulative;

/// Counts of consecutive buckets starting at index `offset`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    pub offset: i32,
    pub counts: Vec<u64>,
}

impl Run {
    fn at(&self, index: i64) -> u64 {
        let i = index - i64::from(self.offset);
        if i < 0 {
            return 0;
        }
        self.counts.get(i as usize).copied().unwrap_or(0)
    }

    /// Bucket by bucket, what was added since `earlier`; `None` if any bucket went down.
    fn since(&self, earlier: &Run) -> Option<Run> {
        let start = i64::from(self.offset);
        let end = start + self.counts.len() as i64;
        // A bucket that had counts and is now gone went down.
        for (i, &c) in earlier.counts.iter().enumerate() {
            let index = i64::from(earlier.offset) + i as i64;
            if c > 0 && (index < start || index >= end) {
                return None;
            }
        }
        let counts = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| c.checked_sub(earlier.at(start + i as i64)))
            .collect::<Option<Vec<u64>>>()?;
        Some(Run {
            offset: self.offset,
            counts,
        })
    }
}

/// What a histogram-like point (explicit, exponential, or a summary's count and sum) has
/// accumulated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accumulated {
    /// Identifies the bucket layout (bounds, or scale); a change is a reset.
    pub layout: u64,
    pub count: u64,
    pub sum: f64,
    pub zero: u64,
    pub positive: Run,
    pub negative: Run,
}

impl Cumulative for Accumulated {
    fn since(&self, earlier: &Self) -> Option<Self> {
        if self.layout != earlier.layout || self.count < earlier.count {
            return None;
        }
        Some(Accumulated {
            layout: self.layout,
            count: self.count - earlier.count,
            sum: self.sum - earlier.sum,
            zero: self.zero.checked_sub(earlier.zero)?,
            positive: self.positive.since(&earlier.positive)?,
            negative: self.negative.since(&earlier.negative)?,
        })
    }
}

/// A layout fingerprint of explicit bounds.
pub fn bounds_layout(bounds: &[f64]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(7).build_hasher();
    h.write_u8(1);
    for b in bounds {
        h.write_u64(b.to_bits());
    }
    h.finish()
}

/// A layout fingerprint of an exponential histogram's scale and zero threshold.
pub fn exponential_layout(scale: i32, zero_threshold: f64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(7).build_hasher();
    h.write_u8(2);
    h.write_i32(scale);
    h.write_u64(zero_threshold.to_bits());
    h.finish()
}

/// (value, count) pairs of the non-empty buckets of an explicit histogram.
pub fn explicit_pairs(counts: &[u64], bounds: &[f64], out: &mut Vec<(f64, f64)>) {
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let lower = i.checked_sub(1).and_then(|j| bounds.get(j)).copied();
        let upper = bounds.get(i).copied();
        let value = match (lower, upper) {
            (Some(l), Some(u)) => l + (u - l) / 2.0,
            (None, Some(u)) => u,
            (Some(l), None) => l,
            // No bounds at all: one bucket; the caller uses the mean.
            (None, None) => continue,
        };
        out.push((value, c as f64));
    }
}

/// (value, count) pairs of the non-empty buckets of an exponential histogram.
pub fn exponential_pairs(acc: &Accumulated, scale: i32, out: &mut Vec<(f64, f64)>) {
    let base = 2f64.powf(2f64.powi(-scale));
    if acc.zero > 0 {
        out.push((0.0, acc.zero as f64));
    }
    for (run, sign) in [(&acc.positive, 1.0), (&acc.negative, -1.0)] {
        for (i, &c) in run.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let index = f64::from(run.offset) + i as f64;
            let lower = base.powf(index);
            let upper = base.powf(index + 1.0);
            out.push((sign * (lower + (upper - lower) / 2.0), c as f64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_buckets_become_per_interval_counts_and_shrinking_ones_a_reset() {
        let earlier = Accumulated {
            layout: 1,
            count: 5,
            sum: 10.0,
            zero: 0,
            positive: Run {
                offset: 2,
                counts: vec![1, 4],
            },
            negative: Run::default(),
        };
        // A new bucket below the old ones (the offset moved): counts aligned by index.
        let now = Accumulated {
            layout: 1,
            count: 9,
            sum: 19.0,
            zero: 0,
            positive: Run {
                offset: 1,
                counts: vec![2, 1, 6],
            },
            negative: Run::default(),
        };
        let d = now.since(&earlier).map(|d| (d.count, d.sum, d.positive));
        assert_eq!(
            d,
            Some((
                4,
                9.0,
                Run {
                    offset: 1,
                    counts: vec![2, 0, 2]
                }
            ))
        );
        let reset = Accumulated {
            count: 2,
            ..now.clone()
        };
        assert!(reset.since(&earlier).is_none());
        let other_layout = Accumulated { layout: 2, ..now };
        assert!(other_layout.since(&earlier).is_none());
    }

    #[test]
    fn buckets_are_represented_by_their_middle_and_open_ends_by_their_bound() {
        let mut out = Vec::new();
        explicit_pairs(&[1, 0, 3, 2], &[1.0, 2.0, 4.0], &mut out);
        assert_eq!(out, vec![(1.0, 1.0), (3.0, 3.0), (4.0, 2.0)]);
        let acc = Accumulated {
            zero: 1,
            positive: Run {
                offset: 0,
                counts: vec![2],
            },
            negative: Run {
                offset: 1,
                counts: vec![3],
            },
            ..Default::default()
        };
        out.clear();
        // scale 0: base 2; bucket 0 = (1, 2], negative bucket 1 = [-4, -2).
        exponential_pairs(&acc, 0, &mut out);
        assert_eq!(out, vec![(0.0, 1.0), (1.5, 2.0), (-3.0, 3.0)]);
    }
}
