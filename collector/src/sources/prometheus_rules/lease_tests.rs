//! Leader election against the fake Lease API of [`super::fake_leases`] (no API server runs
//! here; ../shared/TESTING.md).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fake_leases::{kubeconfig, serve, FakeLeases};
use super::lease::{self, Leading, LeaseConfig};
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::shutdown::ShutdownTrigger;
use sextant_pipeline::telemetry::ComponentMetrics;

fn config(dir: &std::path::Path, port: u16, identity: &str) -> LeaseConfig {
    let path = dir.join(format!("kubeconfig-{identity}"));
    std::fs::write(&path, kubeconfig(port)).unwrap();
    LeaseConfig {
        name: "sextant-ruler".into(),
        namespace: Some("rulers".into()),
        identity: Some(identity.into()),
        duration: DurationValue(Duration::from_millis(1500)),
        renew_deadline: DurationValue(Duration::from_millis(1000)),
        retry_period: DurationValue(Duration::from_millis(100)),
        kubeconfig: Some(path),
    }
}

fn start(config: &LeaseConfig) -> (Leading, ShutdownTrigger) {
    let election = config.prepare("rules").unwrap();
    let leading = Leading::default();
    let (trigger, shutdown) = ShutdownTrigger::new();
    let metrics = ComponentMetrics::new("collector", "rules", "prometheus_rules");
    tokio::spawn(lease::run(election, leading.clone(), metrics, shutdown));
    (leading, trigger)
}

/// Watches both for `for_how_long`: never both leading at once; returns who led at the end.
async fn watch(a: &Leading, b: &Leading, for_how_long: Duration) -> (bool, bool) {
    let start = Instant::now();
    while start.elapsed() < for_how_long {
        assert!(!(a.now() && b.now()), "both rulers led at once");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (a.now(), b.now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ruler_leads_the_other_takes_over_and_none_leads_without_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(FakeLeases::default());
    let port = serve(fake.clone()).await;
    let (a, stop_a) = start(&config(dir.path(), port, "ruler-a"));
    let (b, stop_b) = start(&config(dir.path(), port, "ruler-b"));

    // Exactly one leads, and the Lease names it.
    let (a_leads, b_leads) = watch(&a, &b, Duration::from_secs(2)).await;
    assert!(a_leads ^ b_leads, "one leads: a {a_leads}, b {b_leads}");
    let (leader, leader_stop, follower, follower_stop, follower_name) = if a_leads {
        (a, stop_a, b, stop_b, "ruler-b")
    } else {
        (b, stop_b, a, stop_a, "ruler-a")
    };
    assert_ne!(fake.holder().as_deref(), Some(follower_name));

    // The leader stops cleanly: it gives the Lease up and the other takes it at its next try.
    leader_stop.stop();
    let (old, new) = watch(&leader, &follower, Duration::from_millis(600)).await;
    assert!(!old && new, "the other took over: old {old}, new {new}");
    assert_eq!(fake.holder().as_deref(), Some(follower_name));
    assert_eq!(fake.transitions(), Some(1));

    // The API out of reach: the holder stops leading by its renew deadline (before the Lease
    // could expire for anyone else), and says so.
    fake.down.store(true, Ordering::SeqCst);
    let stopped = Instant::now();
    while follower.now() && stopped.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!follower.now(), "still leading without the API");
    // Back: it leads again (its own Lease, renewed).
    fake.down.store(false, Ordering::SeqCst);
    let back = Instant::now();
    while !follower.now() && back.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(follower.now());
    follower_stop.stop();
}

#[test]
fn settings_that_could_let_both_lead_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), 1, "x");
    c.renew_deadline = DurationValue(Duration::from_secs(2));
    assert!(c
        .prepare("rules")
        .unwrap_err()
        .to_string()
        .contains("lease.renew_deadline"));
    let mut c = config(dir.path(), 1, "x");
    c.retry_period = DurationValue(Duration::from_secs(1));
    assert!(c
        .prepare("rules")
        .unwrap_err()
        .to_string()
        .contains("lease.retry_period"));
}
