//! Pod association on the agent: `PodsByIp` on pods as the (fake, see `fake_api`) API serves
//! them, and the `otlp` and `xray_udp` sources adding a sender's pod by the address it sends
//! from (loopback addresses 127.0.0.x stand in for pod IPs: Linux routes all of 127/8 locally).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sextant_pipeline::component::SourceContext;
use sextant_pipeline::flow::event::{Events, Span};
use sextant_pipeline::sources::otlp::OtlpSourceConfig;
use sextant_pipeline::sources::pod_association::{PeerPods, PodAssociationConfig, PodResolver};
use sextant_pipeline::sources::xray_udp::XRayUdpSourceConfig;
use sextant_pipeline::telemetry::ComponentMetrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::AgentPods;
use crate::kubernetes::fake_api::{pod, FakeApi};
use crate::test_support::{free_tcp_and_udp_port, patience, Running};

const CHECKOUT: &str = "127.0.0.11";
const HOST_NETWORK: &str = "127.0.0.12";
const REUSED: &str = "127.0.0.13";

/// `pod` with its IPs, `hostNetwork` and phase.
fn with_network(mut pod: Value, ips: &[&str], host_network: bool, phase: &str) -> Value {
    pod["status"] = json!({
        "phase": phase,
        "podIP": ips[0],
        "podIPs": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(),
    });
    pod["spec"]["hostNetwork"] = json!(host_network);
    pod
}

fn checkout() -> Value {
    with_network(
        pod(
            "checkout-7d9f8b6c5-x2x",
            "uid-checkout",
            "node-a",
            json!({"app": "checkout", "pod-template-hash": "7d9f8b6c5"}),
            json!({"team": "payments"}),
            Some(("ReplicaSet", "checkout-7d9f8b6c5")),
        ),
        &[CHECKOUT, "fd00::11"],
        false,
        "Running",
    )
}

fn node_pods() -> Vec<Value> {
    vec![
        checkout(),
        with_network(
            pod(
                "node-exporter-abcde",
                "uid-ne",
                "node-a",
                json!({}),
                json!({}),
                Some(("DaemonSet", "node-exporter")),
            ),
            &[HOST_NETWORK],
            true,
            "Running",
        ),
        // A finished job's pod keeps the IP that a running pod has since been given.
        with_network(
            pod(
                "report-28461",
                "uid-report",
                "node-a",
                json!({}),
                json!({}),
                Some(("Job", "report")),
            ),
            &[REUSED],
            false,
            "Succeeded",
        ),
        with_network(
            pod(
                "db-0",
                "uid-db",
                "node-a",
                json!({}),
                json!({}),
                Some(("StatefulSet", "db")),
            ),
            &[REUSED],
            false,
            "Running",
        ),
    ]
}

async fn start_api() -> (FakeApi, tempfile::TempDir, PodAssociationConfig) {
    let api = FakeApi::start(node_pods()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
    let config = PodAssociationConfig {
        kubeconfig: Some(kubeconfig),
        node_name: Some("node-a".into()),
        ..PodAssociationConfig::default()
    };
    (api, dir, config)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn texts(attributes: &[sextant_pipeline::flow::event::KeyValue]) -> Vec<String> {
    attributes
        .iter()
        .map(|kv| format!("{}={}", kv.key, kv.value.to_text()))
        .collect()
}

const CHECKOUT_ATTRIBUTES: [&str; 8] = [
    "k8s.namespace.name=shop",
    "k8s.pod.name=checkout-7d9f8b6c5-x2x",
    "k8s.pod.uid=uid-checkout",
    "k8s.node.name=node-a",
    "k8s.replicaset.name=checkout-7d9f8b6c5",
    "k8s.deployment.name=checkout",
    "k8s.pod.label.app=checkout",
    "k8s.pod.label.pod-template-hash=7d9f8b6c5",
];

/// Waits until `pods` knows `ip` (`present`) or does not.
async fn until(pods: &Arc<dyn PeerPods>, ip: IpAddr, present: bool) {
    let deadline = tokio::time::Instant::now() + patience(Duration::from_secs(10));
    while pods.attributes_of(ip).is_some() != present {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{ip} present={present} never"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_found_by_every_ip_but_host_network_and_finished_pods_are_not() {
    let (api, _dir, config) = start_api().await;
    let metrics = ComponentMetrics::new("test", "otlp", "otlp");
    let pods = AgentPods.resolve(&config, &metrics).unwrap().unwrap();
    until(&pods, ip(CHECKOUT), true).await;

    let found = pods.attributes_of(ip(CHECKOUT)).unwrap();
    assert_eq!(texts(&found), CHECKOUT_ATTRIBUTES);
    // Dual stack: the pod's IPv6 address names it too.
    assert_eq!(
        texts(&pods.attributes_of(ip("fd00::11")).unwrap()),
        CHECKOUT_ATTRIBUTES
    );
    assert!(pods.attributes_of(ip(HOST_NETWORK)).is_none());
    let reused = pods.attributes_of(ip(REUSED)).unwrap();
    assert!(
        texts(&reused).contains(&"k8s.pod.name=db-0".to_owned()),
        "{reused:?}"
    );
    assert!(texts(&reused).contains(&"k8s.statefulset.name=db".to_owned()));

    // Pods come and go with the watch.
    api.apply(with_network(
        pod("web-1", "uid-web", "node-a", json!({}), json!({}), None),
        &["127.0.0.14"],
        false,
        "Running",
    ));
    until(&pods, ip("127.0.0.14"), true).await;
    api.delete("uid-checkout");
    until(&pods, ip(CHECKOUT), false).await;
    assert!(pods.attributes_of(ip("fd00::11")).is_none());
    // Annotations only when asked for.
    let with_annotations = PodAssociationConfig {
        annotations: true,
        labels: false,
        ..config.clone()
    };
    api.apply(checkout());
    let pods = AgentPods
        .resolve(&with_annotations, &metrics)
        .unwrap()
        .unwrap();
    until(&pods, ip(CHECKOUT), true).await;
    let attributes = texts(&pods.attributes_of(ip(CHECKOUT)).unwrap());
    assert!(attributes.contains(&"k8s.pod.annotation.team=payments".to_owned()));
    assert!(!attributes.iter().any(|a| a.starts_with("k8s.pod.label.")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn association_is_off_without_the_api_and_required_settings_are_checked() {
    let metrics = ComponentMetrics::new("test", "otlp", "otlp");
    // Outside a cluster and without a kubeconfig: off, unless it was required.
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
        let auto = PodAssociationConfig::default();
        assert!(AgentPods.resolve(&auto, &metrics).unwrap().is_none());
        let required = PodAssociationConfig {
            enabled: Some(true),
            ..auto
        };
        assert!(AgentPods.resolve(&required, &metrics).is_err());
    }
    let off = PodAssociationConfig {
        enabled: Some(false),
        kubeconfig: Some("/nonexistent".into()),
        ..PodAssociationConfig::default()
    };
    assert!(AgentPods.resolve(&off, &metrics).unwrap().is_none());
}

/// An OTLP/HTTP JSON request of one span whose resource sets `resource`, sent from `from`.
async fn send_otlp_from(from: &str, port: u16, resource: Value) -> String {
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": resource},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "name": "GET /cart",
            "kind": 2,
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000"
        }]}]
    }]})
    .to_string();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip(from), 0)).unwrap();
    let mut stream = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let request = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

/// Spans from the source's queue (acknowledged) until there are `n`.
async fn spans(source: &Running, n: usize) -> Vec<Span> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + patience(Duration::from_secs(15));
    while seen.len() < n {
        let batch = tokio::time::timeout_at(deadline, source.queue.pop())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} spans", seen.len()))
            .unwrap();
        if let Events::Spans(s) = &batch.events {
            seen.extend(s.iter().cloned());
        }
        batch.acks.deliver();
    }
    seen
}

fn resource_of(span: &Span) -> Vec<String> {
    texts(&span.origin.resource.attributes)
}

fn with_pods(cx: &mut SourceContext) {
    let resolver: Arc<dyn PodResolver> = Arc::new(AgentPods);
    cx.pods = Some(resolver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_from_a_pod_gets_its_attributes_and_keeps_what_the_sender_set() {
    let (_api, dir, pod_association) = start_api().await;
    let port = crate::test_support::free_port();
    let config = OtlpSourceConfig {
        address: SocketAddr::from(([0, 0, 0, 0], port)),
        pod_association,
        ..OtlpSourceConfig::default()
    };
    let source = Running::start("otlp", dir.path(), |mut cx| {
        with_pods(&mut cx);
        sextant_pipeline::sources::otlp::build(&config, cx)
    });
    // The watch lists before the first sender: wait for a request that comes back associated.
    let deadline = tokio::time::Instant::now() + patience(Duration::from_secs(10));
    loop {
        let (answer, span) =
            tokio::join!(send_otlp_from(CHECKOUT, port, json!([])), spans(&source, 1));
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        if resource_of(&span[0]).len() > 1 {
            assert_eq!(resource_of(&span[0]), CHECKOUT_ATTRIBUTES);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never associated");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What the sender set stays; the pod adds the rest.
    let sdk_set = json!([
        {"key": "service.name", "value": {"stringValue": "checkout"}},
        {"key": "k8s.pod.name", "value": {"stringValue": "set-by-the-sdk"}}
    ]);
    let (answer, span) = tokio::join!(
        send_otlp_from(CHECKOUT, port, sdk_set.clone()),
        spans(&source, 1)
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut want = vec![
        "service.name=checkout".to_owned(),
        "k8s.pod.name=set-by-the-sdk".to_owned(),
    ];
    want.extend(
        CHECKOUT_ATTRIBUTES
            .iter()
            .filter(|a| !a.starts_with("k8s.pod.name="))
            .map(|a| a.to_string()),
    );
    assert_eq!(resource_of(&span[0]), want);
    // A hostNetwork pod's address (the node's) names no pod: unchanged.
    let (answer, span) = tokio::join!(
        send_otlp_from(HOST_NETWORK, port, sdk_set),
        spans(&source, 1)
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        resource_of(&span[0]),
        ["service.name=checkout", "k8s.pod.name=set-by-the-sdk"]
    );
    source.stop().await;
}

/// An X-Ray segment datagram.
fn segment(id: &str) -> String {
    format!(
        "{{\"format\":\"json\",\"version\":1}}\n{{\"trace_id\":\"1-5759e988-bd862e3fe1be46a994272793\",\"id\":\"{id}\",\"name\":\"checkout\",\"start_time\":1461096053.37518,\"end_time\":1461096053.4042}}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xray_segments_from_a_pod_get_its_attributes() {
    let (_api, dir, pod_association) = start_api().await;
    let metrics = ComponentMetrics::new("test", "xray", "xray_udp");
    // Wait for the watch (shared with the source: one per node and API) to have listed.
    let pods = AgentPods
        .resolve(&pod_association, &metrics)
        .unwrap()
        .unwrap();
    until(&pods, ip(CHECKOUT), true).await;
    // Picked only now, free for UDP and TCP (the sampling proxy listens on the same port): a
    // UDP port picked before the wait had its TCP twin taken by another test's connection.
    let port = free_tcp_and_udp_port();
    let config = XRayUdpSourceConfig {
        address: SocketAddr::from(([0, 0, 0, 0], port)),
        pod_association,
        ..XRayUdpSourceConfig::default()
    };
    let source = Running::start("xray_udp", dir.path(), |mut cx| {
        with_pods(&mut cx);
        sextant_pipeline::sources::xray_udp::build(&config, cx)
    });
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    for (from, id) in [
        (CHECKOUT, "70de5b6f19ff9a0a"),
        (HOST_NETWORK, "70de5b6f19ff9a0b"),
    ] {
        let socket = tokio::net::UdpSocket::bind(SocketAddr::new(ip(from), 0))
            .await
            .unwrap();
        socket.send_to(segment(id).as_bytes(), to).await.unwrap();
    }
    let mut got = spans(&source, 2).await;
    got.sort_by_key(|s| s.span_id);
    let origin = |span: &Span| {
        resource_of(span)
            .into_iter()
            .filter(|a| a.starts_with("k8s."))
            .collect::<Vec<_>>()
    };
    // The segment's own resource (service.name from its name) stays; the pod adds its own.
    assert!(resource_of(&got[0]).contains(&"service.name=checkout".to_owned()));
    assert_eq!(origin(&got[0]), CHECKOUT_ATTRIBUTES);
    assert!(origin(&got[1]).is_empty(), "{:?}", resource_of(&got[1]));
    source.stop().await;
}
