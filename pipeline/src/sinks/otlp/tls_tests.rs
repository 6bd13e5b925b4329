//! The OTLP hop over TLS, sink to receiver on loopback, with certificates made for the test
//! (rcgen): mutual TLS delivers; a client without a certificate, or one that trusts another CA,
//! is refused at the handshake and its batch is not delivered.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::ack::{Ack, AckStatus, Acks};
use crate::batch::Batch;
use crate::component::{SinkContext, SourceContext};
use crate::event::{Events, LogEvent};
use crate::fanout::Fanout;
use crate::queue::{ByteQueue, WhenFull};
use crate::shutdown::ShutdownTrigger;
use crate::telemetry::{ComponentMetrics, QueueMetrics};

struct Pki {
    ca: rcgen::Certificate,
    params: rcgen::CertificateParams,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        Self { ca, params, ca_key }
    }

    /// Writes `<stem>.pem` and `<stem>.key` for a certificate this CA signs.
    fn issue(&self, dir: &Path, stem: &str, names: &[&str]) {
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
    }

    fn write_ca(&self, path: &Path) {
        std::fs::write(path, self.ca.pem()).unwrap();
    }
}

fn batch(n: usize) -> (Batch, tokio::sync::oneshot::Receiver<AckStatus>) {
    let (share, rx) = Ack::channel();
    let events = (0..n)
        .map(|i| LogEvent {
            body: format!("secret line {i}").into(),
            ..Default::default()
        })
        .collect();
    (Batch::new(Events::Logs(events), Acks::one(share)), rx)
}

/// Sends one batch through an `otlp` sink configured by `sink_yaml`; its delivery status.
async fn send(sink_yaml: &str, name: &str) -> AckStatus {
    let config: super::OtlpSinkConfig = serde_yaml_ng::from_str(sink_yaml).unwrap();
    let input = Arc::new(ByteQueue::new(
        1 << 20,
        WhenFull::Block,
        QueueMetrics::detached(),
    ));
    let (trigger, shutdown) = ShutdownTrigger::new();
    let data = tempfile::tempdir().unwrap();
    let task = tokio::spawn(
        super::build(
            &config,
            SinkContext {
                name: name.into(),
                data_dir: data.path().to_owned(),
                input: input.clone(),
                shutdown,
                metrics: ComponentMetrics::new(name, "otlp"),
            },
        )
        .unwrap(),
    );
    let (b, rx) = batch(3);
    input.push(b).await;
    let status = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("the sink settles the batch")
        .unwrap();
    input.close();
    trigger.stop();
    let _ = task.await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_delivers_and_clients_without_the_right_certificates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::new("sextant test CA");
    pki.write_ca(&d.join("ca.pem"));
    pki.issue(d, "server", &["localhost", "127.0.0.1"]);
    pki.issue(d, "client", &["agent-1"]);
    let other = Pki::new("some other CA");
    other.write_ca(&d.join("other-ca.pem"));
    other.issue(d, "stranger", &["agent-x"]);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let receiver_yaml = format!(
        "address: 127.0.0.1:{port}\ntls: {{ cert_file: {d}/server.pem, key_file: {d}/server.key, client_ca_file: {d}/ca.pem }}\n",
        d = d.display()
    );
    let receiver_config: crate::sources::otlp::config::OtlpSourceConfig =
        serde_yaml_ng::from_str(&receiver_yaml).unwrap();
    let received = Arc::new(ByteQueue::new(
        1 << 20,
        WhenFull::Block,
        QueueMetrics::detached(),
    ));
    let (r_trigger, r_shutdown) = ShutdownTrigger::new();
    let receiver_metrics = ComponentMetrics::new("tls_receiver_test", "otlp");
    let receiver = tokio::spawn(
        crate::sources::otlp::build(
            &receiver_config,
            SourceContext {
                name: "tls_receiver_test".into(),
                data_dir: d.to_owned(),
                out: Fanout::new(vec![received.clone()]),
                shutdown: r_shutdown,
                metrics: receiver_metrics.clone(),
            },
        )
        .unwrap(),
    );
    // Delivers whatever the receiver takes in, and keeps the bodies.
    let bodies = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let consumer = {
        let (received, bodies) = (received.clone(), bodies.clone());
        tokio::spawn(async move {
            while let Some(b) = received.pop().await {
                if let Events::Logs(l) = &b.events {
                    bodies
                        .lock()
                        .unwrap()
                        .extend(l.iter().map(|e| e.body.to_text().into_owned()));
                }
                b.acks.deliver();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let sink = |extra: &str| {
        format!(
            "inputs: [x]\nendpoint: https://localhost:{port}\nrequest: {{ timeout: 2s, max_attempts: 2, initial_backoff: 50ms }}\nbatch: {{ timeout: 50ms }}\n{extra}"
        )
    };
    let good = sink(&format!(
        "tls: {{ ca_file: {d}/ca.pem, cert_file: {d}/client.pem, key_file: {d}/client.key }}",
        d = d.display()
    ));
    assert_eq!(send(&good, "tls_sink_good").await, AckStatus::Delivered);
    assert_eq!(
        *bodies.lock().unwrap(),
        ["secret line 0", "secret line 1", "secret line 2"]
    );

    let no_client_cert = sink(&format!("tls: {{ ca_file: {}/ca.pem }}", d.display()));
    assert_eq!(
        send(&no_client_cert, "tls_sink_anonymous").await,
        AckStatus::Failed
    );
    let wrong_ca = sink(&format!(
        "tls: {{ ca_file: {d}/other-ca.pem, cert_file: {d}/stranger.pem, key_file: {d}/stranger.key }}",
        d = d.display()
    ));
    assert_eq!(
        send(&wrong_ca, "tls_sink_stranger").await,
        AckStatus::Failed
    );
    assert_eq!(bodies.lock().unwrap().len(), 3, "nothing else got through");
    let text = crate::telemetry::render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("sextant_component_errors_total")
                && l.contains("component=\"tls_receiver_test\"")
                && l.contains("error_type=\"tls_handshake\"")),
        "refused handshakes are counted by the receiver"
    );

    r_trigger.stop();
    received.close();
    let _ = receiver.await;
    let _ = consumer.await;
}
