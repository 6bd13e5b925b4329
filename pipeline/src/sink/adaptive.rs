//! Adaptive request concurrency (AIMD, as in TCP congestion control and Vector's adaptive
//! request concurrency): how many attempts a sink has in flight follows what its backend can take.
//!
//! Contract: the limit starts at 1 and never exceeds `request.concurrency`. Time is cut into
//! windows about one round-trip long. A window in which the limit was reached, nothing pushed
//! back, and the mean round-trip stayed under 1.5 times its long-run average raises the limit by
//! one (additive increase). A window with back-pressure (429, 503, throttling, timeouts, any
//! retryable failure) or with round-trips past that bound multiplies it by 0.9, at least minus
//! one, never below 1 (multiplicative decrease). The limit is exported as
//! `sextant_component_concurrency_limit`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::telemetry::ComponentMetrics;

const MIN_WINDOW: Duration = Duration::from_millis(50);
const DECREASE: f64 = 0.9;
const RTT_TOLERANCE: f64 = 1.5;
const RTT_WEIGHT: f64 = 0.3;

/// How an attempt ended, as far as the limit cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The backend pushed back or did not answer in time.
    BackPressure,
    /// Refused for good: says nothing about load.
    Neutral,
}

struct Window {
    started: Instant,
    rtt_sum: f64,
    answered: u32,
    back_pressure: bool,
    reached_limit: bool,
}

impl Window {
    fn new(reached_limit: bool) -> Self {
        Self {
            started: Instant::now(),
            rtt_sum: 0.0,
            answered: 0,
            back_pressure: false,
            reached_limit,
        }
    }
}

struct State {
    limit: usize,
    in_flight: usize,
    /// Long-run mean round-trip, seconds.
    past_rtt: Option<f64>,
    window: Window,
}

pub struct AdaptiveConcurrency {
    max: usize,
    state: Mutex<State>,
    freed: Notify,
    metrics: ComponentMetrics,
}

/// One attempt's slot; give it back with [`finish`](Self::finish). Dropped unfinished (the
/// attempt timed out or was aborted), it counts as back-pressure.
pub struct Permit<'a> {
    owner: &'a AdaptiveConcurrency,
    started: Instant,
    finished: bool,
}

impl Permit<'_> {
    pub fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.owner.record(self.started.elapsed(), outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.owner
                .record(self.started.elapsed(), Outcome::BackPressure);
        }
    }
}

impl AdaptiveConcurrency {
    pub fn new(max: usize, metrics: ComponentMetrics) -> Self {
        metrics.concurrency_limit.set(1);
        Self {
            max: max.max(1),
            state: Mutex::new(State {
                limit: 1,
                in_flight: 0,
                past_rtt: None,
                window: Window::new(false),
            }),
            freed: Notify::new(),
            metrics,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn limit(&self) -> usize {
        self.state().limit
    }

    /// Waits for a slot under the current limit.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = self.state();
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    if s.in_flight >= s.limit {
                        s.window.reached_limit = true;
                    }
                    return Permit {
                        owner: self,
                        started: Instant::now(),
                        finished: false,
                    };
                }
            }
            freed.await;
        }
    }

    fn record(&self, rtt: Duration, outcome: Outcome) {
        let mut s = self.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Success => {
                s.window.rtt_sum += rtt.as_secs_f64();
                s.window.answered += 1;
            }
            Outcome::BackPressure => s.window.back_pressure = true,
            Outcome::Neutral => {}
        }
        let length = s
            .past_rtt
            .map_or(MIN_WINDOW, |r| Duration::from_secs_f64(r).max(MIN_WINDOW));
        if s.window.started.elapsed() >= length {
            let mean =
                (s.window.answered > 0).then(|| s.window.rtt_sum / f64::from(s.window.answered));
            let slow = matches!((mean, s.past_rtt), (Some(m), Some(p)) if m > p * RTT_TOLERANCE);
            if s.window.back_pressure || slow {
                let cut = ((s.limit as f64) * DECREASE).floor() as usize;
                s.limit = cut.min(s.limit.saturating_sub(1)).max(1);
            } else if s.window.reached_limit && mean.is_some() {
                s.limit = (s.limit + 1).min(self.max);
            }
            if let Some(m) = mean {
                s.past_rtt = Some(match s.past_rtt {
                    Some(p) if !slow => p * (1.0 - RTT_WEIGHT) + m * RTT_WEIGHT,
                    Some(p) => p,
                    None => m,
                });
            }
            let reached = s.in_flight >= s.limit;
            s.window = Window::new(reached);
            self.metrics.concurrency_limit.set(s.limit as i64);
        }
        drop(s);
        self.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A backend that answers in 20 ms while it has at most `capacity` requests, and with 503
    /// beyond that.
    async fn backend(in_flight: &AtomicUsize, capacity: usize) -> Outcome {
        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
        in_flight.fetch_sub(1, Ordering::SeqCst);
        if now > capacity {
            Outcome::BackPressure
        } else {
            Outcome::Success
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_climbs_to_what_the_backend_takes_and_backs_off_past_it() {
        let limiter = Arc::new(AdaptiveConcurrency::new(
            32,
            ComponentMetrics::new("test", "adaptive_test", "test"),
        ));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        // 32 senders that always have something to send, for 10 simulated seconds.
        for _ in 0..32 {
            let (limiter, in_flight, refused) =
                (limiter.clone(), in_flight.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                let end = Instant::now() + Duration::from_secs(10);
                let mut sent = 0usize;
                while Instant::now() < end {
                    let permit = limiter.acquire().await;
                    let outcome = backend(&in_flight, 8).await;
                    if outcome == Outcome::BackPressure {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    permit.finish(outcome);
                    sent += 1;
                }
                sent
            }));
        }
        let mut sent = 0;
        for t in tasks {
            sent += t.await.unwrap();
        }
        let limit = limiter.limit();
        assert!(
            (4..=10).contains(&limit),
            "the limit settles near the capacity of 8: {limit}"
        );
        let refused = refused.load(Ordering::SeqCst);
        // AIMD probes past the capacity by design (the sawtooth), but a fixed limit of 32 would
        // have had 24 of every 32 requests refused; at 1 in flight, 10 s / 20 ms = 500 in all.
        assert!(
            refused * 4 < sent,
            "pushing past the capacity stays the exception: {refused} of {sent} refused"
        );
        assert!(
            sent > 1500,
            "far more than one at a time got through: {sent}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_cut_the_limit_down_to_one() {
        let limiter =
            AdaptiveConcurrency::new(16, ComponentMetrics::new("test", "adaptive_test_2", "test"));
        {
            let mut s = limiter.state();
            s.limit = 16;
        }
        for _ in 0..40 {
            let permit = limiter.acquire().await;
            tokio::time::sleep(Duration::from_millis(60)).await;
            drop(permit); // as a timed-out attempt is
        }
        assert_eq!(limiter.limit(), 1);
    }
}
