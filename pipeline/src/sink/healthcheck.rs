//! Sink health checks: at start, each network sink may check its backend (OTLP: connect to
//! every endpoint; AWS: credentials and a cheap read call), with `healthcheck: false` to skip it.
//!
//! Contract: a check never blocks start-up and never stops a sink. Its outcome is
//! `sextant_component_healthcheck_ok` (1 or 0), logged (`error` when it fails, with the reason),
//! and shown by `/readyz`, which answers 503 naming the sink while its check fails. A failed check
//! is tried again every 30 s until it passes; a delivery by the sink also counts as a pass.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::shutdown::Shutdown;
use crate::telemetry::ComponentMetrics;

/// One check of a backend: `Err` says what is wrong.
pub type Check = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

const TIMEOUT: Duration = Duration::from_secs(10);
const AGAIN_AFTER: Duration = Duration::from_secs(30);

/// Runs `check` now in the background, and again every 30 s while it fails; see the module doc.
pub fn spawn(
    metrics: ComponentMetrics,
    shutdown: Shutdown,
    check: impl Fn() -> Check + Send + 'static,
) {
    tokio::spawn(async move {
        loop {
            let outcome = match tokio::time::timeout(TIMEOUT, check()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {TIMEOUT:?}")),
            };
            match outcome {
                Ok(()) => {
                    metrics.set_healthy(true);
                    tracing::info!(component = %metrics.name, "health check passed");
                    return;
                }
                Err(why) => {
                    metrics.set_healthy(false);
                    tracing::error!(component = %metrics.name, kind = metrics.kind, reason = %why, again_in = ?AGAIN_AFTER, "health check failed; the sink runs and retries its requests");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(AGAIN_AFTER) => {}
                () = shutdown.stopped() => return,
            }
            if !metrics.is_unhealthy() {
                return; // a delivery proved it healthy meanwhile
            }
        }
    });
}

/// Whether a TCP connection to every `host:port` of `urls` opens: the OTLP sink's check.
pub async fn connect_all(urls: Vec<String>) -> Result<(), String> {
    for url in urls {
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        let host = uri.host().ok_or_else(|| format!("{url}: no host"))?;
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("{url}: {e}"))?;
    }
    Ok(())
}
