//! Sink `prometheus_exporter`: an HTTP endpoint Prometheus (or Amazon Managed Prometheus's
//! collector, Grafana Alloy) scrapes for the latest value of every series the sink received.
//!
//! A batch is delivered once its samples are in the store ([`store`]: the shared Prometheus
//! mapping, delta sums accumulated, `target_info`, expiry, a series limit). A scrape renders
//! the page ([`render`]: text 0.0.4, or OpenMetrics when the `Accept` header asks), gzipped
//! when the scraper accepts it. Ingest and render run on blocking threads; a render holds the
//! store only while it copies the page out.

pub mod config;
pub mod render;
pub mod store;
#[cfg(test)]
mod tests;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sextant_pipeline::component::{BuildError, SinkContext, Task};
use sextant_pipeline::flow::ack::AckStatus;
use sextant_pipeline::flow::event::Events;
use sextant_pipeline::net::http;
use sextant_pipeline::sink::driver;
use sextant_pipeline::telemetry::ComponentMetrics;

pub use config::ExporterConfig;
use render::Format;
use store::Store;

/// The store and its clock.
struct Exporter {
    store: Mutex<Store>,
    started: Instant,
    expire_after_ms: u64,
    metrics: ComponentMetrics,
}

impl Exporter {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn ingest(&self, events: Events) -> AckStatus {
        let Events::Metrics(metrics) = events else {
            self.metrics.dropped("not_metrics", events.len() as u64);
            return AckStatus::Rejected;
        };
        let now = self.now();
        let done = match self.store.lock() {
            Ok(mut store) => store.ingest(&metrics, now),
            Err(_) => return AckStatus::Failed,
        };
        let m = &self.metrics;
        for (reason, n) in [("no_value", done.unmapped.no_value)] {
            if n > 0 {
                m.dropped(reason, n);
            }
        }
        if done.evicted > 0 {
            m.discarded("series_limit", done.evicted);
        }
        let points: usize = metrics
            .iter()
            .map(|m| m.data.as_ref().map_or(0, |d| d.point_count()))
            .sum();
        m.sent_events.inc_by(points as u64);
        m.delivered();
        AckStatus::Delivered
    }

    /// The page, after expiring what is too old.
    fn page(&self, format: Format) -> Vec<u8> {
        let before = self.now().saturating_sub(self.expire_after_ms);
        let Ok(mut store) = self.store.lock() else {
            return Vec::new();
        };
        let expired = store.expire(before);
        if expired > 0 {
            self.metrics.discarded("expired", expired);
        }
        store.sweep_members();
        let mut out = Vec::with_capacity(store.series_count() * 96 + 1024);
        render::render(&store, format, &mut out);
        out
    }
}

pub(crate) fn build(config: &ExporterConfig, cx: SinkContext) -> Result<Task, BuildError> {
    let listener = http::bind_now(config.address).map_err(|e| BuildError::io(&cx.name, e))?;
    let exporter = Arc::new(Exporter {
        store: Mutex::new(Store::new(config.max_series)),
        started: Instant::now(),
        expire_after_ms: config.expire_after.0.as_millis() as u64,
        metrics: cx.metrics.clone(),
    });
    let shutdown = cx.shutdown.clone();
    let path = config.path.clone();
    let batch = config.batch.clone();
    let serving = exporter.clone();
    let ingesting = exporter;
    Ok(Box::pin(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "prometheus exporter cannot use its socket");
                return;
            }
        };
        let handler = move |request: hyper::Request<hyper::body::Incoming>| {
            let (exporter, path) = (serving.clone(), path.clone());
            async move { answer(&exporter, &path, request).await }
        };
        let process = move |events| {
            let exporter = ingesting.clone();
            async move {
                tokio::task::spawn_blocking(move || exporter.ingest(events))
                    .await
                    .unwrap_or(AckStatus::Failed)
            }
        };
        tokio::join!(
            http::serve(listener, shutdown, handler),
            driver::drive(cx, batch, 1, process)
        );
    }))
}

async fn answer(
    exporter: &Arc<Exporter>,
    path: &str,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<http::Body> {
    if request.uri().path() != path {
        return http::response(404, "text/plain", "not found\n");
    }
    if request.method() != hyper::Method::GET && request.method() != hyper::Method::HEAD {
        return http::response(405, "text/plain", "GET only\n");
    }
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let format = Format::negotiate(&header(hyper::header::ACCEPT));
    let gzip = header(hyper::header::ACCEPT_ENCODING).contains("gzip");
    let exporter = exporter.clone();
    let page = tokio::task::spawn_blocking(move || {
        let page = exporter.page(format);
        if !gzip {
            return page;
        }
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(page.len() / 8),
            flate2::Compression::fast(),
        );
        // Writing to a `Vec` cannot fail.
        encoder
            .write_all(&page)
            .and_then(|()| encoder.finish())
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let mut response = http::response(200, format.content_type(), page);
    if gzip {
        response.headers_mut().insert(
            hyper::header::CONTENT_ENCODING,
            hyper::header::HeaderValue::from_static("gzip"),
        );
    }
    response
}
