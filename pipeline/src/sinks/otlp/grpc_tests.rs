//! The otlp sink over OTLP/gRPC to a real `otlp` receiver on loopback (both Sextant's; the
//! end-to-end tests check each side against the OpenTelemetry Python SDK and grpcio).

use super::test_support::{free_port, Receiver, Sink};
use crate::flow::ack::AckStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_delivers_every_batch_plain_and_gzipped() {
    let port = free_port();
    let receiver = Receiver::start("grpc_in", &format!("address: 127.0.0.1:{port}")).await;
    for (compression, label) in [("none", "plain"), ("gzip", "gzipped")] {
        let sink = Sink::start(
            &format!("{{inputs: [x], endpoint: 'http://127.0.0.1:{port}', protocol: grpc, compression: {compression}}}"),
            &format!("grpc_{label}"),
        );
        let statuses = sink.send(label, 5, 200).await;
        assert_eq!(statuses, vec![AckStatus::Delivered; 5]);
        sink.stop().await;
    }
    let bodies = receiver
        .bodies
        .lock()
        .map(|b| b.clone())
        .unwrap_or_default();
    assert_eq!(bodies.len(), 2000);
    assert!(bodies.contains(&"plain-4 199".to_string()));
    assert!(bodies.contains(&"gzipped-0 0".to_string()));
    receiver.stop().await;
}

#[test]
fn zstd_over_grpc_is_refused_at_start_up() {
    let config: Result<super::OtlpSinkConfig, _> = serde_yaml_ng::from_str(
        "{inputs: [x], endpoint: 'http://127.0.0.1:4317', protocol: grpc, compression: zstd}",
    );
    let err = config.map(|c| c.prepare("s").is_err());
    assert_eq!(err.ok(), Some(true));
}
