//! Source `xray_udp`: the X-Ray daemon's UDP protocol (port 2000), so applications instrumented
//! with the X-Ray SDKs send their segments to Sextant unchanged. Each datagram becomes a span
//! carrying its original document ([`parse`]), which the `aws_xray` sink sends as it came, and
//! whose every field is also in OpenTelemetry's terms ([`segment`]), nested subsegments as child
//! spans, for any other sink. On the agent, a sender's pod (by its source IP) adds its `k8s.*`
//! attributes to the resource ([`crate::sources::pod_association`]). Datagrams are gathered into batches of up to 1,000 spans or 200 ms.
//!
//! Beside it, on TCP at the same address, the daemon's sampling proxy forwards the SDKs'
//! centralised sampling calls to X-Ray ([`sampling_proxy`]).
//!
//! UDP cannot push back: while the pipeline is full this source waits, and the kernel's socket
//! buffer (`receive_buffer_bytes`) holds what arrives meanwhile; past it the kernel drops. A
//! datagram that is not a segment is counted (`sextant_events_discarded_total` by
//! reason), logged at a rate limit, and skipped.

pub mod parse;
pub mod sampling_proxy;
pub mod segment;
#[cfg(test)]
mod segment_tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::component::{BuildError, SourceContext, Task};
use crate::config::units::ByteSizeValue;
use crate::flow::ack::Acks;
use crate::flow::batch::Batch;
use crate::flow::event::{Events, Origin, Span};
use crate::net::http;
use crate::sources::pod_association::{associate, peer_pods, PeerPods, PodAssociationConfig};
use crate::telemetry::{ComponentMetrics, LogLimiter};
use sampling_proxy::{SamplingProxy, SamplingProxyConfig};

const MAX_BATCH_SPANS: usize = 1000;
const MAX_BATCH_WAIT: Duration = Duration::from_millis(200);
/// The largest datagram the X-Ray daemon protocol carries.
const MAX_DATAGRAM: usize = 64 * 1024;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct XRayUdpSourceConfig {
    /// Where the X-Ray SDKs send (`AWS_XRAY_DAEMON_ADDRESS`); the daemon's port is 2000.
    pub address: SocketAddr,
    /// The socket's receive buffer, which absorbs bursts while the pipeline is busy.
    pub receive_buffer_bytes: ByteSizeValue,
    /// On the agent: add the `k8s.*` attributes of the sender's pod (by its source IP) to its
    /// segments' resources, see [`crate::sources::pod_association`].
    pub pod_association: PodAssociationConfig,
    /// The X-Ray daemon's sampling proxy on TCP at `address` ([`sampling_proxy`]).
    pub sampling_proxy: SamplingProxyConfig,
}

impl Default for XRayUdpSourceConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 2000)),
            receive_buffer_bytes: ByteSizeValue(4 * 1024 * 1024),
            pod_association: PodAssociationConfig::default(),
            sampling_proxy: SamplingProxyConfig::default(),
        }
    }
}

impl XRayUdpSourceConfig {
    fn validate(&self, _name: &str) -> Result<(), BuildError> {
        Ok(())
    }
}

crate::source_config!(
    XRayUdpSourceConfig,
    "xray_udp",
    crate::flow::event::Signals::TRACES,
    build,
    XRayUdpSourceConfig::validate
);

fn bind(config: &XRayUdpSourceConfig) -> std::io::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(config.address)?;
    socket.set_nonblocking(true)?;
    let _ = set_receive_buffer(&socket, config.receive_buffer_bytes.as_usize());
    Ok(socket)
}

/// Best effort: the kernel may cap it (`net.core.rmem_max`).
fn set_receive_buffer(socket: &std::net::UdpSocket, bytes: usize) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    socket.set_recv_buffer_size(bytes)
}

pub fn build(config: &XRayUdpSourceConfig, cx: SourceContext) -> Result<Task, BuildError> {
    // Bind now so a port in use is a start-up error.
    let pods = peer_pods(cx.pods.as_ref(), &config.pod_association, &cx.metrics)?;
    let std_socket = bind(config).map_err(|e| BuildError::io(&cx.name, e))?;
    let proxy_listener = match config.sampling_proxy.enabled {
        true => Some(http::bind_now(config.address).map_err(|e| BuildError::io(&cx.name, e))?),
        false => None,
    };
    let proxy = Arc::new(SamplingProxy::new(
        &config.sampling_proxy,
        cx.metrics.clone(),
    ));
    let address = config.address;
    Ok(Box::pin(async move {
        let proxying = match proxy_listener.map(tokio::net::TcpListener::from_std) {
            Some(Ok(listener)) => {
                tracing::info!(component = %cx.name, %address, "proxying X-Ray sampling calls over TCP");
                Some(tokio::spawn(http::serve_with(
                    listener,
                    None,
                    cx.shutdown.clone(),
                    move |req| {
                        let proxy = proxy.clone();
                        async move { proxy.handle(req).await }
                    },
                )))
            }
            Some(Err(e)) => {
                tracing::error!(component = %cx.name, error = %e, "the X-Ray sampling proxy cannot use its socket");
                None
            }
            None => None,
        };
        let socket = match tokio::net::UdpSocket::from_std(std_socket) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(component = %cx.name, error = %e, "xray_udp cannot use its socket");
                return;
            }
        };
        cx.metrics.set_up(true);
        tracing::info!(component = %cx.name, %address, "receiving X-Ray segments over UDP");
        let intake = Intake {
            origin: Arc::new(Origin::default()),
            pods,
            bad_input: LogLimiter::default(),
            metrics: cx.metrics.clone(),
        };
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut spans = Vec::new();
        let mut deadline = None;
        loop {
            let wait = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cx.shutdown.stopped() => break,
                () = wait => {}
                r = socket.recv_from(&mut buf) => {
                    let Ok((n, sender)) = r else { continue };
                    intake.take(&buf[..n], sender, &mut spans);
                    // What else is queued in the socket, without a trip through the
                    // runtime per datagram.
                    while spans.len() < MAX_BATCH_SPANS {
                        let Ok((n, sender)) = socket.try_recv_from(&mut buf) else {
                            break;
                        };
                        intake.take(&buf[..n], sender, &mut spans);
                    }
                    if !spans.is_empty() {
                        deadline.get_or_insert_with(|| tokio::time::Instant::now() + MAX_BATCH_WAIT);
                    }
                    if spans.len() < MAX_BATCH_SPANS {
                        continue;
                    }
                }
            }
            if !spans.is_empty() {
                let n = spans.len();
                cx.out
                    .send(Batch::spans(std::mem::take(&mut spans), Acks::none()))
                    .await;
                cx.metrics.sent_events.inc_by(n as u64);
            }
            deadline = None;
        }
        if !spans.is_empty() {
            cx.out.send(Batch::spans(spans, Acks::none())).await;
        }
        if let Some(proxying) = proxying {
            let _ = proxying.await;
        }
        cx.metrics.set_up(false);
    }))
}

/// What becomes of each datagram.
struct Intake {
    origin: Arc<Origin>,
    pods: Option<Arc<dyn PeerPods>>,
    bad_input: LogLimiter,
    metrics: ComponentMetrics,
}

impl Intake {
    /// Parses one datagram from `sender` into `spans`, or counts why it was skipped.
    fn take(&self, datagram: &[u8], sender: SocketAddr, spans: &mut Vec<Span>) {
        self.metrics.received_bytes.inc_by(datagram.len() as u64);
        match parse::datagram(datagram, &self.origin) {
            Ok(from_datagram) => {
                self.metrics
                    .received_events
                    .inc_by(from_datagram.len() as u64);
                let mut events = Events::Spans(from_datagram);
                associate(self.pods.as_ref(), sender.ip(), &mut events);
                if let Events::Spans(from_datagram) = events {
                    spans.extend(from_datagram);
                }
            }
            Err(reason) => {
                self.metrics.discarded(reason, 1);
                if let Some(suppressed) = self.bad_input.allow() {
                    tracing::warn!(component = %self.metrics.name, reason, suppressed, "skipped a datagram that is not an X-Ray segment");
                }
            }
        }
    }
}
