//! Leader election against a fake Lease API (no API server runs here; ../shared/TESTING.md):
//! a stand-in written for these tests that serves `coordination.k8s.io/v1` Leases the way the
//! API server does — GET (404 when absent), POST (409 when it exists), PUT only with the
//! current `resourceVersion` (409 otherwise), each write a new version — and can be switched
//! to answer 503 to everything, as an API server out of reach.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::lease::{self, Leading, LeaseConfig};
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::shutdown::ShutdownTrigger;
use sextant_pipeline::telemetry::ComponentMetrics;

#[derive(Default)]
struct FakeLeases {
    lease: Mutex<Option<Value>>,
    version: Mutex<u64>,
    down: AtomicBool,
}

impl FakeLeases {
    fn answer(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let not_found = || {
            (
                404,
                json!({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","message":"not found","code":404}),
            )
        };
        let conflict = || {
            (
                409,
                json!({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","message":"the object has been modified","code":409}),
            )
        };
        if self.down.load(Ordering::SeqCst) {
            return (
                503,
                json!({"kind":"Status","apiVersion":"v1","status":"Failure","message":"unavailable","code":503}),
            );
        }
        if !path.starts_with("/apis/coordination.k8s.io/v1/namespaces/rulers/leases") {
            return not_found();
        }
        let mut lease = self.lease.lock().unwrap();
        let mut version = self.version.lock().unwrap();
        match method {
            "GET" => lease.clone().map_or_else(not_found, |l| (200, l)),
            "POST" if lease.is_some() => conflict(),
            "POST" | "PUT" => {
                let mut new: Value = serde_json::from_slice(body).unwrap();
                if method == "PUT" {
                    let current = lease
                        .as_ref()
                        .map(|l| l["metadata"]["resourceVersion"].clone());
                    if current != Some(new["metadata"]["resourceVersion"].clone()) {
                        return conflict();
                    }
                }
                *version += 1;
                new["metadata"]["resourceVersion"] = json!(version.to_string());
                new["metadata"]["namespace"] = json!("rulers");
                new["apiVersion"] = json!("coordination.k8s.io/v1");
                new["kind"] = json!("Lease");
                *lease = Some(new.clone());
                (if method == "POST" { 201 } else { 200 }, new)
            }
            _ => not_found(),
        }
    }

    fn holder(&self) -> Option<String> {
        self.lease
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
    }
}

/// Serves `fake` over HTTP/1.1 with keep-alive; returns its port.
async fn serve(fake: Arc<FakeLeases>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let fake = fake.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut request_line = String::new();
                    if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = request_line.split_whitespace();
                    let (method, path) = (
                        parts.next().unwrap_or("").to_string(),
                        parts.next().unwrap_or("").to_string(),
                    );
                    let mut length = 0usize;
                    loop {
                        let mut header = String::new();
                        if read.read_line(&mut header).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if header == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    if read.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let path = path.split('?').next().unwrap_or("").to_string();
                    let (status, answer) = fake.answer(&method, &path, &body);
                    let answer = answer.to_string();
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn config(dir: &std::path::Path, port: u16, identity: &str) -> LeaseConfig {
    let kubeconfig = dir.join(format!("kubeconfig-{identity}"));
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: test-token\n"),
    )
    .unwrap();
    LeaseConfig {
        name: "sextant-ruler".into(),
        namespace: Some("rulers".into()),
        identity: Some(identity.into()),
        duration: DurationValue(Duration::from_millis(1500)),
        renew_deadline: DurationValue(Duration::from_millis(1000)),
        retry_period: DurationValue(Duration::from_millis(100)),
        kubeconfig: Some(kubeconfig),
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
    let transitions =
        fake.lease.lock().unwrap().as_ref().unwrap()["spec"]["leaseTransitions"].clone();
    assert_eq!(transitions, json!(1));

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
