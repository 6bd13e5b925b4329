//! The process's memory budget: above a soft limit intake pauses, above a hard limit queued
//! batches spill to disk instead of growing.
//!
//! Contract:
//! - With `memory.limit` (the budget; soft limit 80% of it, hard limit 90%, unless given) or
//!   either limit on its own, resident memory (`VmRSS`) is sampled every 100 ms (see below).
//!   Between two samples the pipeline's own growth is added to the last sample: the bytes of
//!   the batches made since it (a batch is [`Held`] from when it is made until it is dropped,
//!   wherever it is: queue, batcher, request in flight) and of requests being decoded, so that
//!   intake stops within a batch of the limit, not a sample's worth of input later (a file read
//!   at 500 MB/s would otherwise overshoot by 50 MB). The estimate only ever raises the state;
//!   each sample sets it from `VmRSS` anew.
//! - Above the **soft limit** the OTLP receiver answers new requests retry-later (HTTP 503 with
//!   `Retry-After`, gRPC UNAVAILABLE with RetryInfo: the sender keeps the data) and file sources
//!   stop reading (lines wait on disk); sinks keep draining, and intake resumes below it.
//! - Above the **hard limit** the process *spills*: every sink without `queue.disk` writes the
//!   batches it is handed to its spill buffer on disk (a crash-safe disk buffer, see
//!   [`crate::buffer`], acknowledged to the source once fsynced) instead of holding them in
//!   memory, counted in `sextant_component_spilled_events_total`. Spilling lasts until resident
//!   memory is back under the soft limit; the sink then reads the spill out in order before it
//!   takes batches from memory again. Without a hard limit nothing spills.
//! - The receivers also bound the bytes they decode at once (`max_in_flight_bytes` of the OTLP
//!   source), so a burst between two samples cannot outrun the budget.
//! - Sampling quickens to every 10 ms once resident memory (or the estimate, which then wakes
//!   the sampler at once) is within a quarter of the lower limit, and every 32nd of that limit
//!   taken in wakes the sampler too: at full speed the overshoot is a few MB of intake.
//! - Under pressure (over the soft limit, or spilling) threads about to idle give their
//!   allocator's freed memory back to the OS ([`give_back_while_pressed`]), so that what the
//!   sinks freed stops counting against the budget.
//! - While the process spills, a queue in front of a disk stage admits only a small window of
//!   bytes (see [`crate::flow::queue`]): sources then go at the disk's pace instead of filling memory.
//! - Exported as `sextant_memory_resident_bytes`, `sextant_memory_over_soft_limit`,
//!   `sextant_memory_spilling` and `sextant_memory_limit_bytes{limit="soft"|"hard"}`. Without
//!   any limit nothing is sampled, nothing pauses, nothing spills.

mod settings;

pub use settings::{Limits, MemorySettings};

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::time::{Duration, Instant};

use prometheus::{IntGauge, IntGaugeVec};
use tokio::sync::Notify;

use crate::shutdown::Shutdown;

/// How often resident memory is sampled while it is well under the limits...
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// ...and once it is within a quarter of the lower one: a fast source (a file read at
/// several hundred MB/s) then overshoots by a few MB at most.
const SAMPLE_NEAR_EVERY: Duration = Duration::from_millis(10);
/// How often one thread gives freed memory back under pressure, at most.
const GIVE_BACK_EVERY: Duration = Duration::from_millis(100);

static OVER_SOFT: AtomicBool = AtomicBool::new(false);
static SPILLING: AtomicBool = AtomicBool::new(false);
/// The limits in force (`u64::MAX`: none).
static SOFT: AtomicU64 = AtomicU64::new(u64::MAX);
static HARD: AtomicU64 = AtomicU64::new(u64::MAX);
/// Bytes of the batches alive and the requests being decoded now, and at the last sample.
static HELD: AtomicI64 = AtomicI64::new(0);
static HELD_AT_SAMPLE: AtomicI64 = AtomicI64::new(0);
/// `VmRSS` at the last sample (0 before the first, or without limits).
static RSS_AT_SAMPLE: AtomicU64 = AtomicU64::new(0);
/// Within a quarter of the lower limit (sampled or estimated): sample every 10 ms.
static NEAR: AtomicU64 = AtomicU64::new(u64::MAX);
/// Bytes taken in since the start (only grows), at the last sample, and how many more wake
/// the sampler early (a 32nd of the lower limit): memory that churns through the allocator
/// faster than batches live (freed on one thread, not yet reusable on another) is then caught
/// within a few MB of intake, whatever the rate.
static INTAKE: AtomicU64 = AtomicU64::new(0);
static INTAKE_AT_SAMPLE: AtomicU64 = AtomicU64::new(0);
static INTAKE_STEP: AtomicU64 = AtomicU64::new(u64::MAX);
/// Wakes the sampler early: the estimate came near the limits, or a step of intake passed.
static SAMPLE_NOW: LazyLock<Notify> = LazyLock::new(Notify::new);
/// Woken when spilling starts.
static SPILL_STARTED: LazyLock<Notify> = LazyLock::new(Notify::new);
/// The allocator's way to give the calling thread's freed memory back to the OS (the binary
/// chooses the allocator and sets it).
static GIVE_BACK: OnceLock<fn()> = OnceLock::new();

thread_local! {
    static GAVE_BACK_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

struct Gauges {
    resident: IntGauge,
    over_soft: IntGauge,
    spilling: IntGauge,
    limit: IntGaugeVec,
}

static GAUGES: LazyLock<Option<Gauges>> = LazyLock::new(|| {
    fn registered<M: prometheus::core::Collector + Clone + 'static>(m: M) -> M {
        crate::telemetry::register(Box::new(m.clone()));
        m
    }
    let gauge = |name: &str, help: &str| IntGauge::new(name, help).ok().map(registered);
    Some(Gauges {
        resident: gauge(
            "sextant_memory_resident_bytes",
            "Resident memory of the process, sampled when a memory limit is set.",
        )?,
        over_soft: gauge(
            "sextant_memory_over_soft_limit",
            "1 while resident memory is above the soft limit: intake pauses.",
        )?,
        spilling: gauge(
            "sextant_memory_spilling",
            "1 from resident memory crossing the hard limit until it is under the soft limit again: sinks without a disk buffer spill to disk.",
        )?,
        limit: IntGaugeVec::new(
            prometheus::Opts::new(
                "sextant_memory_limit_bytes",
                "The memory limits in force, by `limit` (soft, hard), for dashboards that plot resident memory against them.",
            ),
            &["limit"],
        )
        .ok()
        .map(registered)?,
    })
});

/// Whether intake should pause now. One atomic load: cheap enough for every read and request.
pub fn over_soft_limit() -> bool {
    OVER_SOFT.load(Ordering::Relaxed)
}

/// Whether sinks without a disk buffer should spill what they are handed. One atomic load.
pub fn spilling() -> bool {
    SPILLING.load(Ordering::Relaxed)
}

/// The pipeline took `bytes` in (a batch made, a request being decoded). A few atomics; when
/// the estimate crosses a limit, the state is raised at once (see the module doc).
fn hold(bytes: usize) {
    let held = HELD.fetch_add(bytes as i64, Ordering::Relaxed) + bytes as i64;
    let rss = RSS_AT_SAMPLE.load(Ordering::Relaxed);
    if rss == 0 {
        return;
    }
    let growth = (held - HELD_AT_SAMPLE.load(Ordering::Relaxed)).max(0) as u64;
    let estimate = rss + growth;
    let intake = INTAKE.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
    let stepped = intake.saturating_sub(INTAKE_AT_SAMPLE.load(Ordering::Relaxed))
        > INTAKE_STEP.load(Ordering::Relaxed);
    // Near the limits the sampler already runs every 10 ms: wake it only to get there.
    let near = NEAR.load(Ordering::Relaxed);
    if stepped || (estimate > near && rss <= near) {
        SAMPLE_NOW.notify_one();
    }
    let over_soft = estimate > SOFT.load(Ordering::Relaxed);
    let over_hard = estimate > HARD.load(Ordering::Relaxed);
    if (over_soft && !over_soft_limit()) || (over_hard && !spilling()) {
        let before = State {
            over_soft: over_soft_limit(),
            spilling: spilling(),
        };
        let raised = State {
            over_soft: before.over_soft || over_soft,
            spilling: before.spilling || over_hard,
        };
        publish(before, raised);
    }
}

/// The pipeline let `bytes` it had taken in go.
fn release(bytes: usize) {
    HELD.fetch_sub(bytes as i64, Ordering::Relaxed);
}

/// Sets how freed memory goes back to the OS (once, at start-up; the allocator's business).
pub fn set_give_back(give_back: fn()) {
    let _ = GIVE_BACK.set(give_back);
}

/// Gives what this thread's allocator heap holds free back to the OS now: for a thread that
/// has just freed a large buffer (an inflated request body) and may idle next.
pub fn give_back_now() {
    if let Some(give_back) = GIVE_BACK.get() {
        give_back();
    }
}

/// For a thread about to idle (a runtime worker parking, a paused source): while memory is
/// over the soft limit or spilling, gives what this thread's allocator heap holds free back to
/// the OS, at most every 100 ms per thread. An allocator keeps freed memory for the thread that
/// allocated it, so without this what a paused source's events occupied would stay resident
/// after the sinks freed them. One atomic load when there is no pressure.
pub fn give_back_while_pressed() {
    if !(over_soft_limit() || spilling()) {
        return;
    }
    let Some(give_back) = GIVE_BACK.get() else {
        return;
    };
    let now = Instant::now();
    let due = GAVE_BACK_AT
        .get()
        .is_none_or(|at| now.duration_since(at) >= GIVE_BACK_EVERY);
    if due {
        GAVE_BACK_AT.set(Some(now));
        give_back();
    }
}

/// Bytes counted in the estimate while this lives (a batch, a request being decoded).
#[derive(Debug, Default)]
pub struct Held(usize);

impl Held {
    pub fn new(bytes: usize) -> Self {
        hold(bytes);
        Held(bytes)
    }

    /// Takes over what `other` holds.
    pub fn merge(&mut self, mut other: Held) {
        self.0 += std::mem::take(&mut other.0);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        release(self.0);
    }
}

/// Completes once the process is spilling (at once if it already is).
pub async fn spilling_started() {
    loop {
        let started = SPILL_STARTED.notified();
        tokio::pin!(started);
        started.as_mut().enable();
        if spilling() {
            return;
        }
        started.await;
    }
}

/// Sets the spilling state as the sampler would (stage tests).
#[cfg(test)]
pub(crate) fn set_spilling_for_test(on: bool) {
    let before = State {
        over_soft: over_soft_limit(),
        spilling: spilling(),
    };
    publish(
        before,
        State {
            spilling: on,
            ..before
        },
    );
}

/// Where resident memory stands against the limits; pure, for the sampler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct State {
    over_soft: bool,
    spilling: bool,
}

impl State {
    /// The state after sampling `rss`: spilling starts above the hard limit and lasts until
    /// memory is under the soft limit (or the hard one, without a soft limit) again.
    fn next(self, rss: u64, limits: Limits) -> State {
        let over_soft = limits.soft.is_some_and(|soft| rss > soft);
        let spilling = match limits.hard {
            Some(hard) if rss > hard => true,
            Some(hard) => self.spilling && rss > limits.soft.unwrap_or(hard),
            None => false,
        };
        State {
            over_soft,
            spilling,
        }
    }
}

fn publish(before: State, now: State) {
    OVER_SOFT.store(now.over_soft, Ordering::Relaxed);
    SPILLING.store(now.spilling, Ordering::Relaxed);
    if now.spilling && !before.spilling {
        SPILL_STARTED.notify_waiters();
        tracing::warn!("resident memory above the hard limit: sinks without a disk buffer spill to disk until it is under the soft limit");
    } else if before.spilling && !now.spilling {
        tracing::info!("resident memory under the soft limit again: spilling stops");
    }
    if now.over_soft != before.over_soft {
        if now.over_soft {
            tracing::warn!("resident memory above the soft limit: intake paused until it drops");
        } else {
            tracing::info!("resident memory below the soft limit again: intake resumes");
        }
    }
    if let Some(g) = &*GAUGES {
        g.over_soft.set(i64::from(now.over_soft));
        g.spilling.set(i64::from(now.spilling));
    }
}

/// Resident memory of this process, from `/proc/self/status`.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Samples resident memory against the limits until shutdown (nothing to do without any).
/// The limits apply and the first sample is taken when this is called, not when the future
/// first runs: call it before the sources start, so that a file read at full speed from the
/// first moment is already measured against them.
pub fn watch(
    settings: MemorySettings,
    shutdown: Shutdown,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let limits = settings.limits();
    let active = limits != Limits::default();
    let near = limits.soft.or(limits.hard).unwrap_or(u64::MAX) / 4 * 3;
    let mut next_sample = SAMPLE_EVERY;
    if active {
        SOFT.store(limits.soft.unwrap_or(u64::MAX), Ordering::Relaxed);
        HARD.store(limits.hard.unwrap_or(u64::MAX), Ordering::Relaxed);
        NEAR.store(near, Ordering::Relaxed);
        INTAKE_STEP.store(near / 24, Ordering::Relaxed);
        if let Some(g) = &*GAUGES {
            for (name, limit) in [("soft", limits.soft), ("hard", limits.hard)] {
                if let Some(bytes) = limit {
                    g.limit.with_label_values(&[name]).set(bytes as i64);
                }
            }
        }
        next_sample = sample(limits, near);
    }
    async move {
        if !active {
            return;
        }
        loop {
            tokio::select! {
                () = shutdown.stopped() => break,
                () = tokio::time::sleep(next_sample) => {}
                () = SAMPLE_NOW.notified() => {}
            }
            next_sample = sample(limits, near);
        }
        RSS_AT_SAMPLE.store(0, Ordering::Relaxed);
        let state = State {
            over_soft: over_soft_limit(),
            spilling: spilling(),
        };
        publish(state, State::default());
    }
}

/// One sample: sets the state from `VmRSS`; returns when to sample next.
fn sample(limits: Limits, near: u64) -> Duration {
    let Some(rss) = resident_bytes() else {
        return SAMPLE_EVERY;
    };
    if let Some(g) = &*GAUGES {
        g.resident.set(rss as i64);
    }
    HELD_AT_SAMPLE.store(HELD.load(Ordering::Relaxed), Ordering::Relaxed);
    INTAKE_AT_SAMPLE.store(INTAKE.load(Ordering::Relaxed), Ordering::Relaxed);
    RSS_AT_SAMPLE.store(rss, Ordering::Relaxed);
    // The state as it stands, raised by the estimate since the last sample or not.
    let state = State {
        over_soft: over_soft_limit(),
        spilling: spilling(),
    };
    publish(state, state.next(rss, limits));
    if rss > near {
        SAMPLE_NEAR_EVERY
    } else {
        SAMPLE_EVERY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::ByteSizeValue;
    use crate::shutdown::ShutdownTrigger;

    #[test]
    fn spilling_starts_above_the_hard_limit_and_lasts_until_under_the_soft_one() {
        let limits = Limits {
            soft: Some(80),
            hard: Some(90),
        };
        let mut s = State::default();
        let mut seen = Vec::new();
        for rss in [50, 85, 95, 85, 81, 80, 85, 91] {
            s = s.next(rss, limits);
            seen.push((rss, s.over_soft, s.spilling));
        }
        assert_eq!(
            seen,
            [
                (50, false, false),
                (85, true, false),
                (95, true, true),
                (85, true, true),
                (81, true, true),
                (80, false, false),
                (85, true, false),
                (91, true, true),
            ]
        );
        // A hard limit alone: spilling exactly while above it; nothing pauses.
        let hard_only = Limits {
            soft: None,
            hard: Some(90),
        };
        assert_eq!(
            State::default().next(95, hard_only),
            State {
                over_soft: false,
                spilling: true
            }
        );
        assert_eq!(
            State {
                over_soft: false,
                spilling: true
            }
            .next(89, hard_only),
            State::default()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn above_the_limits_intake_pauses_and_spilling_starts_and_both_end_with_the_watch() {
        assert!(!over_soft_limit() && !spilling());
        let rss = resident_bytes().expect("VmRSS is readable");
        assert!(rss > 1 << 20, "{rss}");
        // Limits below what the process already uses: over both at the first sample.
        let (trigger, shutdown) = ShutdownTrigger::new();
        let waiter = tokio::spawn(spilling_started());
        let task = tokio::spawn(watch(
            MemorySettings {
                soft_limit: Some(ByteSizeValue(1 << 20)),
                hard_limit: Some(ByteSizeValue(2 << 20)),
                ..Default::default()
            },
            shutdown,
        ));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("spilling_started wakes")
            .unwrap();
        assert!(over_soft_limit() && spilling());
        let text = crate::telemetry::render();
        assert!(text.contains("sextant_memory_over_soft_limit 1"), "{text}");
        assert!(text.contains("sextant_memory_spilling 1"), "{text}");
        trigger.stop();
        task.await.unwrap();
        assert!(
            !over_soft_limit() && !spilling(),
            "stopping the watch lifts both"
        );
        // A budget far above: never over.
        let (trigger, shutdown) = ShutdownTrigger::new();
        let task = tokio::spawn(watch(
            MemorySettings {
                limit: Some(ByteSizeValue(1 << 40)),
                ..Default::default()
            },
            shutdown,
        ));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!over_soft_limit() && !spilling());
        trigger.stop();
        task.await.unwrap();
    }
}
