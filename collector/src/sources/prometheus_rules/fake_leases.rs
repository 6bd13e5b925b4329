//! A fake Lease API for tests (no API server runs here; ../shared/TESTING.md): a stand-in
//! written for the tests that serves `coordination.k8s.io/v1` Leases in namespace `rulers` the
//! way the API server does — GET (404 when absent), POST (409 when it exists), PUT only with the
//! current `resourceVersion` (409 otherwise), each write a new version — and can be switched to
//! answer 503 to everything, as an API server out of reach. Used by the collector's unit tests
//! and, through `#[path]`, by the end-to-end tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Default)]
pub struct FakeLeases {
    pub down: AtomicBool,
    lease: Mutex<Option<Value>>,
    version: Mutex<u64>,
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

    /// The Lease's holder now.
    pub fn holder(&self) -> Option<String> {
        self.lease
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
    }
}

/// Serves `fake` over HTTP/1.1 with keep-alive; returns its port.
pub async fn serve(fake: Arc<FakeLeases>) -> u16 {
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

impl FakeLeases {
    /// The Lease's `spec.leaseTransitions`.
    pub fn transitions(&self) -> Option<i64> {
        self.lease
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|l| l["spec"]["leaseTransitions"].as_i64())
    }
}

/// A kubeconfig for the fake at `port`.
pub fn kubeconfig(port: u16) -> String {
    format!("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: test-token\n")
}
