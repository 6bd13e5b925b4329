//! The otlp sink across several collectors (real receivers on loopback): load spreads, a
//! collector that goes away is ejected, and nothing is lost on the way.

use std::time::Duration;

use super::balance::{Balancer, ClientSettings};
use super::test_support::{free_port, Receiver, Sink};
use crate::flow::ack::AckStatus;
use crate::telemetry::ComponentMetrics;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_spread_over_collectors_and_a_dead_one_is_ejected_without_loss() {
    let (p1, p2) = (free_port(), free_port());
    let one = Receiver::start("balance_rx_1", &format!("address: 127.0.0.1:{p1}\n")).await;
    let two = Receiver::start("balance_rx_2", &format!("address: 127.0.0.1:{p2}\n")).await;
    let sink = Sink::start(
        &format!(
            "inputs: [x]\nendpoints: [\"http://127.0.0.1:{p1}\", \"http://127.0.0.1:{p2}\"]\nbatch: {{ timeout: 10ms, max_events: 10 }}\nrequest: {{ concurrency: 4, timeout: 2s, initial_backoff: 20ms, max_backoff: 100ms }}\nbalance: {{ eject_after: 2 }}\nordering: none\n"
        ),
        "balance_sink",
    );
    let statuses = sink.send("before", 40, 10).await;
    assert!(statuses.iter().all(|s| *s == AckStatus::Delivered));
    let (a, b) = (one.received(), two.received());
    assert_eq!(a + b, 400, "every event once");
    assert!(
        a >= 50 && b >= 50,
        "both collectors took a share: {a} / {b}"
    );

    // The second collector goes away: its connections are refused; it is ejected after two
    // failures, and every batch still arrives, at the first.
    two.stop().await;
    let statuses = sink.send("after", 40, 10).await;
    assert!(statuses.iter().all(|s| *s == AckStatus::Delivered));
    assert_eq!(
        one.received(),
        a + 400,
        "the rest went to the live collector"
    );
    let text = crate::telemetry::render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("sextant_component_errors_total")
                && l.contains("component=\"balance_sink\"")
                && l.contains("error_type=\"backend_ejected\"")),
        "the ejection is counted"
    );
    assert!(
        sink.metrics.retries.get() >= 2,
        "the failed attempts were retried"
    );
    sink.stop().await;
    one.stop().await;
}

#[tokio::test]
async fn a_name_resolves_to_every_address_and_unknown_names_keep_what_was_known() {
    let metrics = ComponentMetrics::new("test", "balance_dns_test", "otlp");
    let settings = ClientSettings {
        headers: Vec::new(),
        tls: None,
        protocol: super::config::Protocol::Http,
    };
    let b = Balancer::new(
        vec!["http://localhost:4318".into()],
        settings.clone(),
        3,
        metrics.clone(),
    );
    b.resolve().await;
    let addrs: Vec<_> = b.backends().iter().map(|x| x.addr).collect();
    assert!(!addrs.is_empty());
    assert!(
        addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 4318),
        "{addrs:?}"
    );
    // Resolving again keeps the same backends (and their state).
    let before = b.backends();
    b.resolve().await;
    assert!(before
        .iter()
        .zip(b.backends())
        .all(|(x, y)| std::sync::Arc::ptr_eq(x, &y)));

    let gone = Balancer::new(
        vec!["http://no-such-host.invalid:4318".into()],
        settings,
        3,
        metrics,
    );
    gone.resolve().await;
    assert!(gone.backends().is_empty());
    tokio::time::sleep(Duration::from_millis(1)).await;
}
