//! The process's memory budget: a soft limit on resident memory above which intake pauses.
//!
//! Contract: with `memory.soft_limit` set, resident memory (`VmRSS`) is sampled every 250 ms.
//! While it is above the limit, the OTLP receiver answers new requests 503 with `Retry-After`
//! (the sender keeps the data and retries) and file sources stop reading (lines wait on disk);
//! sinks keep draining, so memory comes back down, and intake resumes below the limit. Exported
//! as `sextant_memory_resident_bytes` and `sextant_memory_over_soft_limit`. Without a limit
//! nothing is sampled and nothing pauses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use prometheus::IntGauge;
use serde::Deserialize;

use crate::config::units::ByteSizeValue;
use crate::shutdown::Shutdown;

/// `memory:` of the config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemorySettings {
    /// Resident memory above which receivers answer retry-later and file sources pause.
    pub soft_limit: Option<ByteSizeValue>,
}

static OVER: AtomicBool = AtomicBool::new(false);

struct Gauges {
    resident: IntGauge,
    over: IntGauge,
}

static GAUGES: LazyLock<Option<Gauges>> = LazyLock::new(|| {
    let resident = IntGauge::new(
        "sextant_memory_resident_bytes",
        "Resident memory of the process, sampled when a soft limit is set.",
    )
    .ok()?;
    let over = IntGauge::new(
        "sextant_memory_over_soft_limit",
        "1 while resident memory is above memory.soft_limit: intake pauses.",
    )
    .ok()?;
    crate::telemetry::register(Box::new(resident.clone()));
    crate::telemetry::register(Box::new(over.clone()));
    Some(Gauges { resident, over })
});

/// Whether intake should pause now. One atomic load: cheap enough for every read and request.
pub fn over_soft_limit() -> bool {
    OVER.load(Ordering::Relaxed)
}

fn set_over(over: bool) {
    if OVER.swap(over, Ordering::Relaxed) != over {
        if over {
            tracing::warn!("resident memory above memory.soft_limit: intake paused until it drops");
        } else {
            tracing::info!("resident memory below memory.soft_limit again: intake resumes");
        }
    }
    if let Some(g) = &*GAUGES {
        g.over.set(i64::from(over));
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

/// Samples resident memory against the soft limit until shutdown (nothing to do without one).
pub async fn watch(settings: MemorySettings, shutdown: Shutdown) {
    let Some(limit) = settings.soft_limit else {
        return;
    };
    loop {
        if let Some(rss) = resident_bytes() {
            if let Some(g) = &*GAUGES {
                g.resident.set(rss as i64);
            }
            set_over(rss > limit.0);
        }
        tokio::select! {
            () = shutdown.stopped() => break,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    set_over(false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::ShutdownTrigger;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn above_the_soft_limit_intake_pauses_and_below_it_resumes() {
        assert!(!over_soft_limit());
        let rss = resident_bytes().expect("VmRSS is readable");
        assert!(rss > 1 << 20, "{rss}");
        // A limit below what the process already uses: over at the first sample.
        let (trigger, shutdown) = ShutdownTrigger::new();
        let task = tokio::spawn(watch(
            MemorySettings {
                soft_limit: Some(ByteSizeValue(1 << 20)),
            },
            shutdown,
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(over_soft_limit());
        assert!(crate::telemetry::render().contains("sextant_memory_over_soft_limit 1"));
        trigger.stop();
        task.await.unwrap();
        assert!(!over_soft_limit(), "stopping the watch lifts the pause");
        // A limit far above: never over.
        let (trigger, shutdown) = ShutdownTrigger::new();
        let task = tokio::spawn(watch(
            MemorySettings {
                soft_limit: Some(ByteSizeValue(1 << 40)),
            },
            shutdown,
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!over_soft_limit());
        trigger.stop();
        task.await.unwrap();
    }
}
