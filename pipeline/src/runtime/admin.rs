//! The admin listener: `/metrics` (Prometheus text of every self-metric), `/healthz` (the process
//! is alive), `/readyz` (every component is up and no sink's health check is failing; 503
//! naming the ones that are not).

use std::net::SocketAddr;

use serde::Deserialize;

use crate::net::http;
use crate::runtime::topology::Health;
use crate::shutdown::Shutdown;

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

/// Binds the admin address now (a port in use is a start-up error) and serves until shutdown.
pub async fn start(
    config: &AdminConfig,
    health: Health,
    shutdown: Shutdown,
) -> std::io::Result<SocketAddr> {
    let listener = http::bind(config.address).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(http::serve(listener, shutdown, move |req| {
        let health = health.clone();
        async move {
            match req.uri().path() {
                "/metrics" => {
                    http::response(200, "text/plain; version=0.0.4", crate::telemetry::render())
                }
                "/healthz" => http::response(200, "text/plain", "ok\n"),
                "/readyz" => {
                    if health.ready() {
                        http::response(200, "text/plain", "ready\n")
                    } else if health.is_empty() {
                        http::response(503, "text/plain", "not ready: starting\n")
                    } else {
                        http::response(
                            503,
                            "text/plain",
                            format!("not ready: {}\n", health.not_ready().join(", ")),
                        )
                    }
                }
                _ => http::response(404, "text/plain", "try /metrics, /healthz or /readyz\n"),
            }
        }
    }));
    Ok(addr)
}
