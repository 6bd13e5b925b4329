//! Cumulative series to deltas. CloudWatch sums what it is sent, so a Prometheus-style counter
//! (cumulative since its start) must be published as the increase since its previous point.
//!
//! Per series (a 64-bit hash of resource, metric name and point attributes) the tracker keeps the
//! last cumulative value and:
//! - the first point of a series is a baseline and publishes nothing — unless its start time is
//!   after the tracker started, in which case the whole value happened while we watched and is
//!   published;
//! - a point whose start equals its time has an unknown start (OpenTelemetry's convention, and
//!   what a scraper sends the first time it sees a counter): it is a baseline when first seen,
//!   and after a known series (a restarted scraper) its increase is counted from the last value;
//! - a value below the last one, or a new start time, is a reset: the new value is the increase;
//! - a point older than the last one is out of order and dropped (the caller counts it);
//! - the latest point seen again (a batch replayed after a failed send) publishes the same delta
//!   as the first time, so a replay never loses the increase nor doubles it;
//! - series not seen for `ttl` are forgotten, and at most `max_series` are tracked: past it, new
//!   series are refused (counted by the caller) rather than growing memory.

use std::collections::HashMap;

/// What the tracker says of a point.
#[derive(Clone, Debug, PartialEq)]
pub enum Delta<T> {
    /// Publish this increase.
    Value(T),
    /// First point of the series: nothing to publish yet.
    Baseline,
    /// Older than the last point of its series.
    OutOfOrder,
    /// The tracker is full; this new series is not tracked.
    Untracked,
}

/// A cumulative quantity: what has happened since `earlier`, or `None` if it went backwards
/// (the series was reset).
pub trait Cumulative: Clone {
    fn since(&self, earlier: &Self) -> Option<Self>;
}

impl Cumulative for f64 {
    fn since(&self, earlier: &Self) -> Option<Self> {
        (*self >= *earlier).then_some(*self - *earlier)
    }
}

struct Series<T> {
    start_ns: u64,
    time_ns: u64,
    value: T,
    /// What the latest point published, for a replay of it.
    published: Delta<T>,
    seen_ms: i64,
}

type Map<T> = HashMap<u64, Series<T>, foldhash::fast::FixedState>;

pub struct DeltaTracker<T> {
    series: Map<T>,
    max_series: usize,
    ttl_ms: i64,
    /// Series starting after this saw their whole life here.
    started_ns: u64,
    last_sweep_ms: i64,
}

impl<T: Cumulative> DeltaTracker<T> {
    pub fn new(max_series: usize, ttl_ms: i64, started_ns: u64) -> Self {
        Self {
            series: Map::default(),
            max_series,
            ttl_ms,
            started_ns,
            last_sweep_ms: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// The delta of series `key` at `time_ns`, given its cumulative `value` and start time
    /// (0: unknown). `now_ms` drives expiry.
    pub fn delta(
        &mut self,
        key: u64,
        start_ns: u64,
        time_ns: u64,
        value: T,
        now_ms: i64,
    ) -> Delta<T> {
        self.sweep(now_ms);
        let Some(s) = self.series.get_mut(&key) else {
            if self.series.len() >= self.max_series {
                return Delta::Untracked;
            }
            let unknown_start = start_ns == 0 || start_ns == time_ns;
            let published = if !unknown_start && start_ns >= self.started_ns {
                Delta::Value(value.clone())
            } else {
                Delta::Baseline
            };
            self.series.insert(
                key,
                Series {
                    start_ns,
                    time_ns,
                    value,
                    published: published.clone(),
                    seen_ms: now_ms,
                },
            );
            return published;
        };
        s.seen_ms = now_ms;
        if time_ns == s.time_ns && start_ns == s.start_ns {
            return s.published.clone();
        }
        if time_ns < s.time_ns {
            return Delta::OutOfOrder;
        }
        let restarted = start_ns != 0 && s.start_ns != 0 && start_ns != s.start_ns;
        let published = if restarted && start_ns == time_ns {
            // Observed anew with an unknown start: what it gained since the last value, if
            // it did not go down.
            value.since(&s.value).map_or(Delta::Baseline, Delta::Value)
        } else if restarted {
            Delta::Value(value.clone())
        } else {
            Delta::Value(value.since(&s.value).unwrap_or_else(|| value.clone()))
        };
        s.start_ns = start_ns;
        s.time_ns = time_ns;
        s.value = value;
        s.published = published.clone();
        published
    }

    fn sweep(&mut self, now_ms: i64) {
        let every = (self.ttl_ms / 4).max(1000);
        if now_ms - self.last_sweep_ms < every {
            return;
        }
        self.last_sweep_ms = now_ms;
        let oldest = now_ms - self.ttl_ms;
        self.series.retain(|_, s| s.seen_ms >= oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_counter_publishes_increases_and_survives_resets_and_replays() {
        let mut t = DeltaTracker::<f64>::new(10, 60_000, 100 * S);
        // Started before we watched: a baseline.
        assert_eq!(t.delta(1, 50 * S, 110 * S, 10.0, 0), Delta::Baseline);
        assert_eq!(t.delta(1, 50 * S, 120 * S, 15.0, 0), Delta::Value(5.0));
        // The same point again (a replayed batch): the same delta, not 0 and not 10.
        assert_eq!(t.delta(1, 50 * S, 120 * S, 15.0, 0), Delta::Value(5.0));
        assert_eq!(t.delta(1, 50 * S, 115 * S, 12.0, 0), Delta::OutOfOrder);
        // Dropped below: a reset, the new value is the increase.
        assert_eq!(t.delta(1, 50 * S, 130 * S, 3.0, 0), Delta::Value(3.0));
        // A new start time with a higher value is a reset too.
        assert_eq!(t.delta(1, 125 * S, 140 * S, 7.0, 0), Delta::Value(7.0));
        assert_eq!(t.delta(1, 125 * S, 150 * S, 7.0, 0), Delta::Value(0.0));
        // Started after we did: its whole value is new.
        assert_eq!(t.delta(2, 105 * S, 110 * S, 4.0, 0), Delta::Value(4.0));
        // No start time known: a baseline.
        assert_eq!(t.delta(3, 0, 110 * S, 4.0, 0), Delta::Baseline);
    }

    #[test]
    fn a_scraped_counter_with_an_unknown_start_is_a_baseline_then_counts_on_after_a_scraper_restart(
    ) {
        let mut t = DeltaTracker::<f64>::new(10, 60_000, 100 * S);
        // First seen by a scraper after the tracker started: start = time, a baseline.
        assert_eq!(t.delta(1, 110 * S, 110 * S, 1000.0, 0), Delta::Baseline);
        assert_eq!(t.delta(1, 110 * S, 125 * S, 1010.0, 0), Delta::Value(10.0));
        // The scraper restarted and sees it anew: its gain since the last value.
        assert_eq!(t.delta(1, 140 * S, 140 * S, 1030.0, 0), Delta::Value(20.0));
        // Seen anew lower than it was: nothing can be said; a baseline.
        assert_eq!(t.delta(1, 155 * S, 155 * S, 5.0, 0), Delta::Baseline);
        assert_eq!(t.delta(1, 155 * S, 170 * S, 9.0, 0), Delta::Value(4.0));
    }

    #[test]
    fn memory_is_bounded_and_idle_series_expire() {
        let mut t = DeltaTracker::<f64>::new(2, 60_000, 0);
        assert_eq!(t.delta(1, 0, S, 1.0, 0), Delta::Baseline);
        assert_eq!(t.delta(2, 0, S, 1.0, 0), Delta::Baseline);
        assert_eq!(t.delta(3, 0, S, 1.0, 0), Delta::Untracked);
        assert_eq!(t.len(), 2);
        // Series 2 stays active, series 1 goes idle past the ttl.
        assert_eq!(t.delta(2, 0, 2 * S, 2.0, 50_000), Delta::Value(1.0));
        assert_eq!(t.delta(3, 0, 3 * S, 1.0, 70_000), Delta::Baseline);
        assert_eq!(t.len(), 2, "series 1 expired, series 3 took its place");
    }
}
