//! What the agent's source tests share: a plain HTTP/1.1 server (scrape targets, a kubelet
//! stand-in) whose callback gives each request's text by its number, and a source running in
//! the test's runtime into a queue the test reads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use std::path::Path;
use std::time::Duration;

use sextant_pipeline::component::{BuildError, SourceContext, Task};
use sextant_pipeline::flow::batch::Batch;
use sextant_pipeline::flow::event::{Events, Metric};
use sextant_pipeline::flow::fanout::Fanout;
use sextant_pipeline::flow::queue::{ByteQueue, WhenFull};
use sextant_pipeline::shutdown::ShutdownTrigger;
use sextant_pipeline::telemetry::{ComponentMetrics, QueueMetrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a test waits for what should come at once: `d` times `SEXTANT_TEST_PATIENCE`
/// (default 1). The arm64 run under qemu sets it: emulation on a loaded machine is several
/// times slower, and a deadline there says nothing about the code.
pub fn patience(d: Duration) -> Duration {
    let factor = std::env::var("SEXTANT_TEST_PATIENCE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    d * factor
}

/// A loopback TCP port free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A port free on all addresses for both UDP and TCP right now (the X-Ray source binds both on
/// one port). Pick it just before binding: until then another test may take it.
pub fn free_tcp_and_udp_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// Serves `body(n)` to the `n`th request (from 0) on a loopback port: (port, requests served).
pub async fn serve(
    body: impl Fn(usize) -> String + Send + Sync + 'static,
) -> (u16, Arc<AtomicUsize>) {
    serve_paths(move |_, n| body(n)).await
}

/// Serves `body(path, n)` to the `n`th request (from 0, counted over all paths).
pub async fn serve_paths(
    body: impl Fn(&str, usize) -> String + Send + Sync + 'static,
) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let body = Arc::new(body);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (counter, body) = (counter.clone(), body.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&got);
                let path = request.split_ascii_whitespace().nth(1).unwrap_or("/");
                let text = body(path, counter.fetch_add(1, Ordering::SeqCst));
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (port, served)
}

/// A source running in the test's runtime, into a queue the test reads.
pub struct Running {
    pub queue: Arc<ByteQueue<Batch>>,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Builds the source with `build` (its `SourceConfig::build`) and runs it.
    pub fn start(
        kind: &'static str,
        data_dir: &Path,
        build: impl FnOnce(SourceContext) -> Result<Task, BuildError>,
    ) -> Self {
        let queue: Arc<ByteQueue<Batch>> = Arc::new(ByteQueue::new(
            1 << 24,
            WhenFull::Block,
            QueueMetrics::detached(),
        ));
        let (trigger, shutdown) = ShutdownTrigger::new();
        let cx = SourceContext {
            name: kind.into(),
            data_dir: data_dir.to_owned(),
            out: Fanout::new(vec![queue.clone()]),
            taps: None,
            shutdown,
            metrics: ComponentMetrics::new("test", kind, kind),
            pods: None,
        };
        let task = tokio::spawn(build(cx).unwrap());
        Self {
            queue,
            trigger,
            task,
        }
    }

    /// Metrics (acknowledging their batches) until `done` says enough; a panic after 15 s
    /// (times [`patience`]).
    pub async fn metrics_until(&self, mut done: impl FnMut(&[Metric]) -> bool) -> Vec<Metric> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + patience(Duration::from_secs(15));
        while !done(&seen) {
            let b = tokio::time::timeout_at(deadline, self.queue.pop())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "not seen in 15 s; got {:?}",
                        seen.iter().map(|m: &Metric| &m.name).collect::<Vec<_>>()
                    )
                })
                .unwrap();
            if let Events::Metrics(m) = &b.events {
                seen.extend(m.iter().cloned());
            }
            b.acks.deliver();
        }
        seen
    }

    pub async fn stop(self) {
        self.trigger.stop();
        self.task.await.unwrap();
    }
}
