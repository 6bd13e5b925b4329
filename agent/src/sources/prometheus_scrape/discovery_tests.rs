//! Discovery of this node's pods: `pod_targets` on pod objects, and the source against the fake
//! API server (no real apiserver runs here; see `kubernetes::fake_api`) scraping small real HTTP
//! servers in the test as the pods' endpoints.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use sextant_pipeline::flow::event::{find_attribute, Metric, MetricData};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::discovery::{pod_targets, KubernetesSdConfig, Namespaces, Role};
use super::PrometheusScrapeConfig;
use crate::kubernetes::fake_api::{kubeconfig_for, FakeApi};
use crate::test_support::Running;

fn pod(name: &str, node: &str, annotations: Value, ports: Value) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "shop", "uid": format!("{name}-uid"),
                     "labels": {"app.kubernetes.io/name": name}, "annotations": annotations},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1", "ports": ports}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "10.0.0.9",
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn labels_of(d: &super::discovery::Discovered) -> std::collections::BTreeMap<String, String> {
    d.labels
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn pods_give_prometheus_role_pod_targets_and_the_annotation_convention_picks_ports() {
    let raw = KubernetesSdConfig {
        role: Role::Pod,
        namespaces: Namespaces::default(),
        prometheus_io_annotations: false,
    };
    let annotated = KubernetesSdConfig {
        prometheus_io_annotations: true,
        ..raw.clone()
    };
    let ports = json!([
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9102, "protocol": "TCP"},
        {"name": "dns", "containerPort": 53, "protocol": "UDP"}
    ]);
    let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod("api", "node-a", json!({"prometheus.io/scrape": "true", "prometheus.io/port": "metrics", "prometheus.io/path": "/m"}), ports.clone())).unwrap();

    // Prometheus's role: pod: one target per declared port, all the meta labels.
    let all = pod_targets(&p, &raw);
    assert_eq!(all.len(), 3);
    let first = labels_of(&all[0]);
    assert_eq!(first["__address__"], "127.0.0.1:8080");
    assert_eq!(first["__meta_kubernetes_pod_container_port_name"], "http");
    assert_eq!(
        first["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
        "api"
    );
    assert_eq!(
        first["__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name"],
        "true"
    );
    assert_eq!(
        first["__meta_kubernetes_pod_annotation_prometheus_io_port"],
        "metrics"
    );
    assert_eq!(first["__meta_kubernetes_pod_ready"], "true");
    assert_eq!(first["__meta_kubernetes_pod_host_ip"], "10.0.0.9");
    assert!(!first.contains_key("namespace"));

    // The annotations: the named port, the path, and namespace/pod/container labels.
    let picked = pod_targets(&p, &annotated);
    assert_eq!(picked.len(), 1);
    let l = labels_of(&picked[0]);
    assert_eq!(
        (l["__address__"].as_str(), l["__metrics_path__"].as_str()),
        ("127.0.0.1:9102", "/m")
    );
    assert_eq!(
        (
            l["namespace"].as_str(),
            l["pod"].as_str(),
            l["container"].as_str()
        ),
        ("shop", "api", "app")
    );
    assert_eq!(
        find_attribute(&picked[0].resource, "k8s.pod.name").and_then(|v| v.as_str()),
        Some("api")
    );

    // A numeric port; no port annotation: every TCP port; not annotated, not running, other
    // namespaces: nothing.
    let numeric: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(
        "n",
        "node-a",
        json!({"prometheus.io/scrape": "true", "prometheus.io/port": "7000"}),
        json!([]),
    ))
    .unwrap();
    assert_eq!(
        labels_of(&pod_targets(&numeric, &annotated)[0])["__address__"],
        "127.0.0.1:7000"
    );
    let no_port: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(
        "x",
        "node-a",
        json!({"prometheus.io/scrape": "true"}),
        ports,
    ))
    .unwrap();
    assert_eq!(
        pod_targets(&no_port, &annotated).len(),
        2,
        "the two TCP ports, not the UDP one"
    );
    let quiet: k8s_openapi::api::core::v1::Pod =
        serde_json::from_value(pod("q", "node-a", json!({}), json!([]))).unwrap();
    assert!(pod_targets(&quiet, &annotated).is_empty());
    let mut pending = serde_json::to_value(&numeric).unwrap();
    pending["status"]["phase"] = json!("Pending");
    let pending: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pending).unwrap();
    assert!(pod_targets(&pending, &annotated).is_empty());
    let elsewhere = KubernetesSdConfig {
        namespaces: Namespaces {
            names: vec!["kube-system".into()],
        },
        ..annotated
    };
    assert!(pod_targets(&numeric, &elsewhere).is_empty());
}

/// A scrape target answering every GET with a counter of the requests it served.
async fn exposition_server(name: &'static str) -> (u16, Arc<AtomicUsize>) {
    crate::test_support::serve(move |n| {
        format!(
            "# TYPE served counter\nserved{{server=\"{name}\"}} {}\n",
            n + 1
        )
    })
    .await
}

fn served_by<'a>(
    metrics: &'a [Metric],
    pod: &str,
) -> Vec<&'a sextant_pipeline::flow::event::NumberPoint> {
    metrics
        .iter()
        .filter(|m| {
            m.name == "served"
                && m.origin
                    .resource_attribute("k8s.pod.name")
                    .and_then(|v| v.as_str())
                    == Some(pod)
        })
        .flat_map(|m| match m.data.as_ref() {
            Some(MetricData::Sum { points, .. }) => points.iter().collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_on_this_node_are_scraped_as_they_come_change_and_go_and_others_never() {
    let (port_a, _) = exposition_server("a").await;
    let (port_b, _) = exposition_server("b").await;
    let (port_other, hits_other) = exposition_server("other-node").await;
    let api = FakeApi::start(vec![
        pod(
            "api",
            "node-a",
            json!({"prometheus.io/scrape": "true", "prometheus.io/port": "metrics"}),
            json!([{"name": "metrics", "containerPort": port_a}]),
        ),
        pod(
            "worker",
            "node-a",
            json!({}),
            json!([{"name": "metrics", "containerPort": port_b}]),
        ),
        pod(
            "elsewhere",
            "node-b",
            json!({"prometheus.io/scrape": "true"}),
            json!([{"containerPort": port_other}]),
        ),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_for(api.port)).unwrap();
    let config: PrometheusScrapeConfig = serde_yaml_ng::from_str(&format!(
        "scrape_interval: 200ms\nkubernetes: {{kubeconfig: {}, node_name: node-a}}\nscrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs: [{{role: pod, prometheus_io_annotations: true}}]\n",
        kubeconfig.display()
    ))
    .unwrap();
    let running = Running::start("prometheus_scrape", dir.path(), |cx| {
        super::build(&config, cx)
    });

    // The annotated pod on this node, with its pod's labels and resource.
    let got = running
        .metrics_until(|m| !served_by(m, "api").is_empty())
        .await;
    let p = served_by(&got, "api")[0];
    let attr = |k| {
        find_attribute(&p.attributes, k)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    assert_eq!(
        (
            attr("namespace"),
            attr("pod"),
            attr("container"),
            attr("server")
        ),
        (
            Some("shop".into()),
            Some("api".into()),
            Some("app".into()),
            Some("a".into())
        )
    );
    assert!(served_by(&got, "worker").is_empty());

    // The other pod gets annotated: scraped from then on.
    api.apply(pod(
        "worker",
        "node-a",
        json!({"prometheus.io/scrape": "true", "prometheus.io/port": port_b.to_string()}),
        json!([{"name": "metrics", "containerPort": port_b}]),
    ));
    running
        .metrics_until(|m| !served_by(m, "worker").is_empty())
        .await;

    // The first pod goes: its series are marked stale, and it is scraped no more.
    api.delete("api-uid");
    let got = running
        .metrics_until(|m| served_by(m, "api").iter().any(|p| p.flags == 1))
        .await;
    let after_stale = served_by(&got, "api")
        .iter()
        .skip_while(|p| p.flags != 1)
        .count();
    assert_eq!(after_stale, 1, "nothing after the stale marker");
    let later = running
        .metrics_until(|m| served_by(m, "worker").len() >= 3)
        .await;
    assert!(
        served_by(&later, "api").is_empty(),
        "scraped after its pod was deleted"
    );

    assert_eq!(
        hits_other.load(Ordering::SeqCst),
        0,
        "a pod on another node was scraped"
    );
    assert!(
        api.selectors().iter().all(|s| s == "spec.nodeName=node-a"),
        "{:?}",
        api.selectors()
    );
    running.stop().await;
}

/// A CA and a server certificate for 127.0.0.1 (rcgen), as PEM files in `dir`.
fn certificates(dir: &Path) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("kubelet.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("kubelet.key"), key.serialize_pem()).unwrap();
}

/// A kubelet stand-in: HTTPS, answering `/metrics/cadvisor` only with the right bearer token
/// (401 otherwise), counting what it answered.
async fn kubelet(dir: &Path) -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let tls = sextant_pipeline::net::tls::ServerTls {
        cert_file: dir.join("kubelet.pem"),
        key_file: dir.join("kubelet.key"),
        client_ca_file: None,
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls.server_config().unwrap()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (ok, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (ok2, refused2) = (ok.clone(), refused.clone());
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, ok, refused) = (acceptor.clone(), ok2.clone(), refused2.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut got = Vec::new();
                let mut buf = vec![0u8; 4096];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&got).to_lowercase();
                let authorized = request.contains("authorization: bearer test-token\r\n");
                let response = if request.starts_with("get /metrics/cadvisor ") && authorized {
                    ok.fetch_add(1, Ordering::SeqCst);
                    let body = "# TYPE container_cpu_usage_seconds_total counter\ncontainer_cpu_usage_seconds_total{container=\"app\",namespace=\"shop\",pod=\"api\"} 12.5\n";
                    format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                } else {
                    refused.fetch_add(1, Ordering::SeqCst);
                    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, ok, refused)
}

fn up_of(metrics: &[Metric], job: &str) -> Vec<f64> {
    metrics
        .iter()
        .filter(|m| {
            m.name == "up"
                && m.origin
                    .resource_attribute("service.name")
                    .and_then(|v| v.as_str())
                    == Some(job)
        })
        .flat_map(|m| match m.data.as_ref() {
            Some(MetricData::Gauge(points)) => points
                .iter()
                .filter_map(|p| p.value.map(|v| v.as_f64()))
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelet_is_scraped_over_https_with_the_token_and_a_wrong_ca_or_token_is_up_0() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let (port, answered, refused) = kubelet(d).await;
    std::fs::write(d.join("token"), "test-token\n").unwrap();
    std::fs::write(d.join("wrong-token"), "nope").unwrap();
    let mut host = pod("api", "node-a", json!({}), json!([]));
    host["status"]["hostIP"] = json!("127.0.0.1");
    let api = FakeApi::start(vec![host]).await;
    std::fs::write(d.join("kubeconfig"), kubeconfig_for(api.port)).unwrap();
    let job = |name: &str, extra: &str| {
        format!("  - job_name: {name}\n    kubernetes_sd_configs: [{{role: node}}]\n    scheme: https\n    metrics_path: /metrics/cadvisor\n{extra}")
    };
    let config: PrometheusScrapeConfig = serde_yaml_ng::from_str(&format!(
        "scrape_interval: 200ms\nkubernetes: {{kubeconfig: {d}/kubeconfig, node_name: node-a, kubelet_port: {port}}}\nscrape_configs:\n{}{}{}{}",
        job("cadvisor", &format!("    bearer_token_file: {}/token\n    tls_config: {{ca_file: {}/ca.pem}}\n", d.display(), d.display())),
        job("insecure", &format!("    bearer_token_file: {}/token\n    tls_config: {{insecure_skip_verify: true}}\n", d.display())),
        job("wrong_token", &format!("    bearer_token_file: {}/wrong-token\n    tls_config: {{ca_file: {}/ca.pem}}\n", d.display(), d.display())),
        // The system's trust store does not know the test CA.
        job("wrong_ca", &format!("    bearer_token_file: {}/token\n", d.display())),
        d = d.display(),
    ))
    .unwrap();
    let running = Running::start("prometheus_scrape", d, |cx| super::build(&config, cx));
    // The good jobs until one of their scrapes succeeded: a TLS handshake can outlast the
    // 200 ms interval (its timeout) on a loaded or emulated machine (an arm64 run under qemu
    // saw the first `insecure` scrape time out), which is rightly up 0.
    let got = running
        .metrics_until(|m| {
            ["cadvisor", "insecure"]
                .iter()
                .all(|j| up_of(m, j).contains(&1.0))
                && ["wrong_token", "wrong_ca"]
                    .iter()
                    .all(|j| !up_of(m, j).is_empty())
                // A slow handshake makes `wrong_token` up 0 by its timeout before the kubelet
                // has refused it: wait for a refusal too.
                && refused.load(Ordering::SeqCst) >= 1
        })
        .await;
    assert!(
        up_of(&got, "wrong_token").iter().all(|&v| v == 0.0),
        "401 is up 0"
    );
    assert!(
        up_of(&got, "wrong_ca").iter().all(|&v| v == 0.0),
        "an unknown CA is up 0"
    );
    let cpu = got
        .iter()
        .find(|m| m.name == "container_cpu_usage_seconds_total")
        .expect("cAdvisor's series");
    assert_eq!(
        cpu.origin
            .resource_attribute("k8s.node.name")
            .and_then(|v| v.as_str()),
        Some("node-a")
    );
    assert_eq!(
        cpu.origin.resource_attribute("server.port").cloned(),
        Some(sextant_pipeline::flow::event::Value::Int(i64::from(port)))
    );
    assert!(answered.load(Ordering::SeqCst) >= 2 && refused.load(Ordering::SeqCst) >= 1);
    running.stop().await;
}
