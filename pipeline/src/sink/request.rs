//! The request wrapper every sink shares: timeout -> call, retried with jittered exponential
//! backoff, or a backend's throttling hint (Retry-After, retry info) when that is longer, until
//! the backend accepts, refuses for good, or shutdown aborts. A retrying sink says so at the
//! default log level: one `warn` per sink every 10 s at most, with the error (an AccessDenied
//! retried forever shows in the first minute of logs). Same `request:` settings on every sink. (As in
//! the OpenTelemetry Collector's exporterhelper.) Each sink classifies its own errors in its
//! `retry.rs`; this module only acts on the classification.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::units::DurationValue;
use crate::shutdown::Shutdown;
use crate::telemetry::ComponentMetrics;

/// `request:` settings of a sink.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RequestSettings {
    /// One attempt's deadline.
    pub timeout: DurationValue,
    /// Requests in flight at once (with `adaptive_concurrency`, the most it may grow to).
    pub concurrency: usize,
    /// Let the number of attempts in flight follow the backend's latency and push-back (AIMD,
    /// from 1 up to `concurrency`); see [`crate::sink::adaptive`].
    pub adaptive_concurrency: bool,
    /// First retry delay; doubles each attempt, with jitter.
    pub initial_backoff: DurationValue,
    /// Longest delay between attempts (a throttling hint may ask for more, up to 5 minutes).
    pub max_backoff: DurationValue,
    /// Attempts before giving up and handing the batch back as failed; unset: until shutdown.
    pub max_attempts: Option<u32>,
    /// Most requests (attempts, retries included) this sink starts per second; unset: no limit.
    /// Keeps a fleet of collectors under an account's API quota.
    pub rate_limit_per_second: Option<f64>,
}

impl Default for RequestSettings {
    fn default() -> Self {
        Self {
            timeout: DurationValue(Duration::from_secs(30)),
            concurrency: 4,
            adaptive_concurrency: false,
            initial_backoff: DurationValue(Duration::from_millis(200)),
            max_backoff: DurationValue(Duration::from_secs(30)),
            max_attempts: None,
            rate_limit_per_second: None,
        }
    }
}

/// What an attempt waits for before it starts: the rate limit and the adaptive concurrency limit
/// of its sink, when configured.
#[derive(Default)]
pub struct RequestGate {
    rate: Option<RateLimiter>,
    adaptive: Option<crate::sink::adaptive::AdaptiveConcurrency>,
    /// One `warn` per sink at a rate limit while it retries, with the error.
    retrying: crate::telemetry::LogLimiter,
}

impl RequestGate {
    pub fn for_settings(settings: &RequestSettings, metrics: &ComponentMetrics) -> Self {
        Self {
            rate: RateLimiter::for_settings(settings),
            adaptive: settings.adaptive_concurrency.then(|| {
                crate::sink::adaptive::AdaptiveConcurrency::new(
                    settings.concurrency,
                    metrics.clone(),
                )
            }),
            retrying: crate::telemetry::LogLimiter::default(),
        }
    }
}

/// Spaces the starts of requests evenly at the configured rate, across every task of a sink.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl RateLimiter {
    /// A limiter for `settings`, if they ask for one.
    pub fn for_settings(settings: &RequestSettings) -> Option<RateLimiter> {
        let rate = settings
            .rate_limit_per_second
            .filter(|r| *r > 0.0 && r.is_finite())?;
        Some(RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: std::sync::Mutex::new(tokio::time::Instant::now()),
        })
    }

    /// Waits for this request's turn.
    pub async fn acquire(&self) {
        let wait = {
            let Ok(mut next) = self.next.lock() else {
                return;
            };
            let now = tokio::time::Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// What a sink's `retry.rs` says of an error.
#[derive(Clone, Debug, PartialEq)]
pub enum Retry {
    /// Try again, after the backend's hint if it gave one.
    Transient {
        kind: &'static str,
        after: Option<Duration>,
    },
    /// Never going to work: count it, dead-letter it, move on.
    Permanent { kind: &'static str },
}

impl Retry {
    /// An HTTP backend's error status as most backends mean it (remote write, OpenSearch): 429
    /// and 5xx are worth retrying, after `retry_after` if it was given; other statuses refuse
    /// the request.
    pub fn for_http_status(status: u16, retry_after: Option<Duration>) -> Self {
        match status {
            429 => Retry::Transient {
                kind: "http_429",
                after: retry_after,
            },
            500..=599 => Retry::Transient {
                kind: "http_5xx",
                after: retry_after,
            },
            _ => Retry::Permanent { kind: "http_4xx" },
        }
    }
}

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    #[error("refused for good: {0}")]
    Permanent(E),
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: String },
    #[error("shutdown aborted the request")]
    Aborted,
}

const MAX_HINTED_DELAY: Duration = Duration::from_secs(300);

/// The delay before attempt `attempt` (1-based retry count): exponential, capped, with jitter in
/// [delay/2, delay] so a fleet of senders does not retry in lockstep.
pub fn backoff(settings: &RequestSettings, attempt: u32) -> Duration {
    let base = settings.initial_backoff.0.as_secs_f64()
        * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let capped = base.min(settings.max_backoff.0.as_secs_f64());
    Duration::from_secs_f64(capped * (0.5 + fastrand::f64() * 0.5))
}

/// The wait before retry `attempt`: the own jittered backoff, or the backend's hint
/// (Retry-After, RetryInfo, capped at 5 minutes, with up to 20% jitter so a fleet told the same
/// delay does not return at once) when that is longer. A hint of zero never makes a tight loop.
pub fn retry_delay(settings: &RequestSettings, attempt: u32, hint: Option<Duration>) -> Duration {
    let own = backoff(settings, attempt);
    match hint {
        Some(after) => own.max(
            after
                .min(MAX_HINTED_DELAY)
                .mul_f64(1.0 + fastrand::f64() * 0.2),
        ),
        None => own,
    }
}

/// Runs `call` under the settings; see the module doc. `classify` maps an error to a decision;
/// a timeout is always transient.
pub async fn call_with_retry<T, E, F, Fut>(
    settings: &RequestSettings,
    gate: &RequestGate,
    metrics: &ComponentMetrics,
    shutdown: &Shutdown,
    classify: impl Fn(&E) -> Retry,
    mut call: F,
) -> Result<T, CallError<E>>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        if let Some(limiter) = &gate.rate {
            tokio::select! {
                () = limiter.acquire() => {}
                () = shutdown.aborted() => return Err(CallError::Aborted),
            }
        }
        let permit = match &gate.adaptive {
            Some(adaptive) => tokio::select! {
                p = adaptive.acquire() => Some(p),
                () = shutdown.aborted() => return Err(CallError::Aborted),
            },
            None => None,
        };
        let settle = |outcome| {
            if let Some(p) = permit {
                p.finish(outcome);
            }
        };
        let started = Instant::now();
        let outcome = tokio::select! {
            r = tokio::time::timeout(settings.timeout.0, call()) => r,
            () = shutdown.aborted() => return Err(CallError::Aborted),
        };
        metrics
            .request_duration
            .observe(started.elapsed().as_secs_f64());
        use crate::sink::adaptive::Outcome;
        let (kind, hint, last) = match outcome {
            Ok(Ok(v)) => {
                settle(Outcome::Success);
                return Ok(v);
            }
            Ok(Err(e)) => match classify(&e) {
                Retry::Permanent { kind } => {
                    settle(Outcome::Neutral);
                    metrics.error(kind);
                    return Err(CallError::Permanent(e));
                }
                Retry::Transient { kind, after } => {
                    settle(Outcome::BackPressure);
                    (kind, after, e.to_string())
                }
            },
            Err(_elapsed) => {
                settle(Outcome::BackPressure);
                ("timeout", None, "request timed out".to_owned())
            }
        };
        metrics.error(kind);
        if settings.max_attempts.is_some_and(|max| attempt >= max) {
            return Err(CallError::GaveUp {
                attempts: attempt,
                last,
            });
        }
        metrics.retries.inc();
        let delay = retry_delay(settings, attempt, hint);
        if let Some(suppressed) = gate.retrying.allow() {
            tracing::warn!(component = %metrics.name, attempt, ?delay, error = %last, error_type = kind, suppressed, "request failed; retrying");
        } else {
            tracing::debug!(component = %metrics.name, attempt, ?delay, error = %last, "retrying");
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.aborted() => return Err(CallError::Aborted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn settings() -> RequestSettings {
        RequestSettings {
            timeout: DurationValue(Duration::from_secs(1)),
            initial_backoff: DurationValue(Duration::from_millis(100)),
            max_backoff: DurationValue(Duration::from_secs(2)),
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_spaces_requests_across_tasks() {
        let s = RequestSettings {
            rate_limit_per_second: Some(10.0),
            ..settings()
        };
        let m = ComponentMetrics::new("test", "request_test_rate", "test");
        let gate = std::sync::Arc::new(RequestGate::for_settings(&s, &m));
        let start = tokio::time::Instant::now();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (gate, m, s) = (gate.clone(), m.clone(), s.clone());
                tokio::spawn(async move {
                    call_with_retry(
                        &s,
                        &gate,
                        &m,
                        &Shutdown::never(),
                        |_e: &String| Retry::Permanent { kind: "x" },
                        || async { Ok::<_, String>(()) },
                    )
                    .await
                    .unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 20 requests at 10 per second: the first at once, the last 1.9 s later.
        assert_eq!(start.elapsed(), Duration::from_millis(1900));
        assert!(RateLimiter::for_settings(&settings()).is_none());
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let s = settings();
        for attempt in 1..20 {
            let d = backoff(&s, attempt);
            let full = (0.1 * 2f64.powi(attempt as i32 - 1)).min(2.0);
            assert!(
                d.as_secs_f64() >= full / 2.0 - 1e-9 && d.as_secs_f64() <= full + 1e-9,
                "{attempt}: {d:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_then_succeeds_and_counts_retries() {
        let m = ComponentMetrics::new("test", "request_test_retry", "test");
        let calls = AtomicU32::new(0);
        let r: Result<u32, CallError<String>> = call_with_retry(
            &settings(),
            &RequestGate::default(),
            &m,
            &Shutdown::never(),
            |_e: &String| Retry::Transient {
                kind: "http_503",
                after: None,
            },
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 3 {
                    Err(format!("503 #{n}"))
                } else {
                    Ok(n)
                }
            },
        )
        .await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(m.retries.get(), 3);
    }

    #[test]
    fn a_hint_is_honoured_when_longer_than_the_backoff_and_zero_is_never_a_tight_loop() {
        let s = settings();
        for attempt in 1..10 {
            let own_floor = (0.1 * 2f64.powi(attempt as i32 - 1)).min(2.0) / 2.0;
            let zero = retry_delay(&s, attempt, Some(Duration::ZERO));
            assert!(
                zero.as_secs_f64() >= own_floor - 1e-9,
                "{attempt}: {zero:?}"
            );
            let long = retry_delay(&s, attempt, Some(Duration::from_secs(7)));
            assert!(
                long >= Duration::from_secs(7) && long <= Duration::from_millis(8400),
                "{attempt}: {long:?}"
            );
            let huge = retry_delay(&s, attempt, Some(Duration::from_secs(86_400)));
            assert!(huge <= MAX_HINTED_DELAY.mul_f64(1.2), "{huge:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn honours_the_throttling_hint() {
        let m = ComponentMetrics::new("test", "request_test_hint", "test");
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let _ = call_with_retry(
            &settings(),
            &RequestGate::default(),
            &m,
            &Shutdown::never(),
            |_e: &String| Retry::Transient {
                kind: "throttled",
                after: Some(Duration::from_secs(7)),
            },
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err("429".to_owned())
                } else {
                    Ok(())
                }
            },
        )
        .await;
        assert!(start.elapsed() >= Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried_and_timeouts_are() {
        let m = ComponentMetrics::new("test", "request_test_perm", "test");
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = call_with_retry(
            &settings(),
            &RequestGate::default(),
            &m,
            &Shutdown::never(),
            |_e: &String| Retry::Permanent { kind: "http_400" },
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("400".to_owned())
            },
        )
        .await;
        assert!(matches!(r, Err(CallError::Permanent(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let s = RequestSettings {
            max_attempts: Some(3),
            ..settings()
        };
        let r: Result<(), CallError<String>> = call_with_retry(
            &s,
            &RequestGate::default(),
            &m,
            &Shutdown::never(),
            |_e: &String| Retry::Permanent { kind: "never" },
            || async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            },
        )
        .await;
        assert!(matches!(r, Err(CallError::GaveUp { attempts: 3, .. })));
    }
}
