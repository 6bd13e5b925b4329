//! The OTLP hop over TLS, sink to receiver on loopback, with certificates made for the test
//! (rcgen): mutual TLS delivers; a client without a certificate, or one that trusts another CA,
//! is refused at the handshake and its batch is not delivered.

use std::path::Path;

use super::test_support::{free_port, send, Receiver};
use crate::flow::ack::AckStatus;

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

    let port = free_port();
    let receiver = Receiver::start(
        "tls_receiver_test",
        &format!(
            "address: 127.0.0.1:{port}\ntls: {{ cert_file: {d}/server.pem, key_file: {d}/server.key, client_ca_file: {d}/ca.pem }}\n",
            d = d.display()
        ),
    )
    .await;

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
        *receiver.bodies.lock().unwrap(),
        ["secret line-0 0", "secret line-0 1", "secret line-0 2"]
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
    assert_eq!(receiver.received(), 3, "nothing else got through");
    let text = crate::telemetry::render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("sextant_component_errors_total")
                && l.contains("component=\"tls_receiver_test\"")
                && l.contains("error_type=\"tls_handshake\"")),
        "refused handshakes are counted by the receiver"
    );

    receiver.stop().await;
}
