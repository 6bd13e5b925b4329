//! Several collectors behind one `otlp` sink.
//!
//! Contract:
//! - Each endpoint URL's host is resolved to all its addresses (a headless Service's name gives
//!   one per collector pod), again every `resolve_interval`; every address is a backend with its
//!   own connection pool. The URL keeps its name, for `Host`, SNI and certificate checks.
//! - Each attempt goes to the backend with the fewest requests outstanding among those not
//!   ejected; a retry picks again, so it usually lands elsewhere.
//! - A backend failing `eject_after` attempts in a row (transport errors, timeouts, 5xx, 429) is
//!   ejected for a cool-down that starts at 5 s and doubles up to 60 s while it keeps failing;
//!   one success brings it back. With every backend ejected, the one due back soonest is tried.
//! - A failed resolution keeps the backends already known (counted as `error_type="dns"`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::request_builder::OtlpRequest;
use super::retry::OtlpError;
use super::service::OtlpService;
use crate::telemetry::ComponentMetrics;

const FIRST_EJECTION: Duration = Duration::from_secs(5);
const LONGEST_EJECTION: Duration = Duration::from_secs(60);

/// How to build a backend's client.
#[derive(Clone)]
pub struct ClientSettings {
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub protocol: super::config::Protocol,
    pub tls: Option<rustls::ClientConfig>,
}

pub struct Backend {
    pub url: String,
    pub addr: SocketAddr,
    service: OtlpService,
    outstanding: AtomicUsize,
    failures: AtomicU32,
    /// (until when, how long the last ejection was).
    ejected: Mutex<Option<(Instant, Duration)>>,
}

impl Backend {
    fn ejected_until(&self) -> Option<Instant> {
        self.ejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|(until, _)| until)
            .filter(|until| *until > Instant::now())
    }

    fn record(&self, ok: bool, eject_after: u32, metrics: &ComponentMetrics) {
        let mut ejected = self.ejected.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            self.failures.store(0, Ordering::Relaxed);
            if ejected.take().is_some() {
                tracing::info!(component = %metrics.name, backend = %self.addr, "backend answers again");
            }
            return;
        }
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= eject_after {
            let length = match *ejected {
                Some((_, last)) => (last * 2).min(LONGEST_EJECTION),
                None => FIRST_EJECTION,
            };
            *ejected = Some((Instant::now() + length, length));
            self.failures.store(0, Ordering::Relaxed);
            metrics.error("backend_ejected");
            tracing::warn!(component = %metrics.name, backend = %self.addr, ?length, "backend failing; ejected");
        }
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }
}

pub struct Balancer {
    urls: Vec<String>,
    settings: ClientSettings,
    backends: RwLock<Vec<Arc<Backend>>>,
    eject_after: u32,
    metrics: ComponentMetrics,
}

/// `host:port` of a URL, with the scheme's default port.
fn authority(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let host = uri.host()?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some(format!("{host}:{port}"))
}

impl Balancer {
    pub fn new(
        urls: Vec<String>,
        settings: ClientSettings,
        eject_after: u32,
        metrics: ComponentMetrics,
    ) -> Self {
        Self {
            urls,
            settings,
            backends: RwLock::new(Vec::new()),
            eject_after: eject_after.max(1),
            metrics,
        }
    }

    pub fn backends(&self) -> Vec<Arc<Backend>> {
        self.backends
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves every URL and replaces the backend set, keeping backends (and their state)
    /// whose address is still there. A URL that does not resolve keeps its old backends.
    pub async fn resolve(&self) {
        let old = self.backends();
        let mut next: Vec<Arc<Backend>> = Vec::new();
        for url in &self.urls {
            let found = match authority(url) {
                Some(a) => tokio::net::lookup_host(a)
                    .await
                    .map(|addrs| addrs.collect::<Vec<_>>()),
                None => Ok(Vec::new()),
            };
            let addrs = match found {
                Ok(addrs) if !addrs.is_empty() => addrs,
                other => {
                    self.metrics.error("dns");
                    tracing::warn!(component = %self.metrics.name, url, error = ?other.err(), "cannot resolve; keeping the backends known");
                    next.extend(old.iter().filter(|b| b.url == *url).cloned());
                    continue;
                }
            };
            for addr in addrs {
                if next.iter().any(|b| b.url == *url && b.addr == addr) {
                    continue;
                }
                let backend = old
                    .iter()
                    .find(|b| b.url == *url && b.addr == addr)
                    .cloned()
                    .unwrap_or_else(|| {
                        Arc::new(Backend {
                            url: url.clone(),
                            addr,
                            service: OtlpService::new(
                                url,
                                addr,
                                self.settings.headers.clone(),
                                self.settings.tls.clone(),
                                self.settings.protocol,
                            ),
                            outstanding: AtomicUsize::new(0),
                            failures: AtomicU32::new(0),
                            ejected: Mutex::new(None),
                        })
                    });
                next.push(backend);
            }
        }
        if next.len() != old.len() || next.iter().zip(&old).any(|(a, b)| !Arc::ptr_eq(a, b)) {
            let addrs: Vec<String> = next.iter().map(|b| b.addr.to_string()).collect();
            tracing::info!(component = %self.metrics.name, backends = ?addrs, "collectors");
        }
        *self.backends.write().unwrap_or_else(|e| e.into_inner()) = next;
    }

    /// The backend for the next attempt.
    fn pick(&self) -> Option<Arc<Backend>> {
        let backends = self.backends.read().unwrap_or_else(|e| e.into_inner());
        let healthy = backends
            .iter()
            .filter(|b| b.ejected_until().is_none())
            .min_by_key(|b| b.outstanding());
        match healthy {
            Some(b) => Some(b.clone()),
            None => backends.iter().min_by_key(|b| b.ejected_until()).cloned(),
        }
    }

    /// One attempt of `req` on the best backend.
    pub async fn send(&self, req: &OtlpRequest) -> Result<(), OtlpError> {
        if self.backends().is_empty() {
            self.resolve().await;
        }
        let Some(backend) = self.pick() else {
            return Err(OtlpError::Transport(
                "no collector address known (DNS)".into(),
            ));
        };
        let mut attempt = Attempt {
            backend: &backend,
            balancer: self,
            settled: false,
        };
        backend.outstanding.fetch_add(1, Ordering::Relaxed);
        let result = backend.service.send(req).await;
        let healthy = match &result {
            Ok(()) => true,
            Err(OtlpError::Transport(_)) => false,
            Err(OtlpError::Status { status, .. }) => *status != 429 && *status < 500,
            // Overloaded or not answering; a refusal of the data says nothing of the backend.
            Err(OtlpError::Grpc(s)) => !matches!(
                s.code,
                crate::net::grpc::code::UNAVAILABLE
                    | crate::net::grpc::code::RESOURCE_EXHAUSTED
                    | crate::net::grpc::code::DEADLINE_EXCEEDED
            ),
        };
        attempt.settle(healthy);
        result
    }
}

/// One attempt in flight on a backend. An attempt dropped unsettled (its request timed out)
/// counts as a failure of that backend.
struct Attempt<'a> {
    backend: &'a Arc<Backend>,
    balancer: &'a Balancer,
    settled: bool,
}

impl Attempt<'_> {
    fn settle(&mut self, healthy: bool) {
        self.settled = true;
        self.backend
            .record(healthy, self.balancer.eject_after, &self.balancer.metrics);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.backend.outstanding.fetch_sub(1, Ordering::Relaxed);
        if !self.settled {
            self.backend
                .record(false, self.balancer.eject_after, &self.balancer.metrics);
        }
    }
}
