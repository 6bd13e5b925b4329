//! The admin listener: `/metrics` (Prometheus text of every self-metric), `/healthz` (the process
//! is alive), `/readyz` (every component started and its sinks are healthy; 503 naming the ones
//! that are not).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use crate::http;
use crate::shutdown::Shutdown;
use crate::topology::Health;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub address: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 8686)),
        }
    }
}

/// The health of the running graphs, updated as they start and stop.
#[derive(Clone, Default)]
pub struct Readiness(Arc<RwLock<Vec<Health>>>);

impl Readiness {
    pub fn add(&self, h: Health) {
        if let Ok(mut v) = self.0.write() {
            v.push(h);
        }
    }

    fn not_ready(&self) -> Option<Vec<String>> {
        let v = self.0.read().ok()?;
        if v.is_empty() {
            return Some(vec!["starting".into()]);
        }
        let missing: Vec<String> = v.iter().flat_map(Health::not_ready).collect();
        Some(missing)
    }
}

/// Binds the admin address now (a port in use is a start-up error) and serves until shutdown.
pub async fn start(
    config: &AdminConfig,
    readiness: Readiness,
    shutdown: Shutdown,
) -> std::io::Result<SocketAddr> {
    let listener = http::bind(config.address).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(http::serve(listener, shutdown, move |req| {
        let readiness = readiness.clone();
        async move {
            match req.uri().path() {
                "/metrics" => {
                    http::response(200, "text/plain; version=0.0.4", crate::telemetry::render())
                }
                "/healthz" => http::response(200, "text/plain", "ok\n"),
                "/readyz" => match readiness.not_ready() {
                    Some(missing) if missing.is_empty() => {
                        http::response(200, "text/plain", "ready\n")
                    }
                    Some(missing) => http::response(
                        503,
                        "text/plain",
                        format!("not ready: {}\n", missing.join(", ")),
                    ),
                    None => http::response(503, "text/plain", "not ready\n"),
                },
                _ => http::response(404, "text/plain", "try /metrics, /healthz or /readyz\n"),
            }
        }
    }));
    Ok(addr)
}
