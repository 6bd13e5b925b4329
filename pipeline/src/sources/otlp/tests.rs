//! The OTLP receiver with real HTTP requests on loopback: it answers only once delivery is known,
//! and malformed input is refused, counted, and never stops it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;

use super::*;
use crate::config::units::{ByteSizeValue, DurationValue};
use crate::flow::queue::{ByteQueue, WhenFull};
use crate::shutdown::ShutdownTrigger;
use crate::telemetry::QueueMetrics;

/// `(status, body)` of a POST.
pub(super) fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let (status, _, body) = post_answered(port, path, headers, body);
    (status, body)
}

/// `(status, Content-Type, body)` of a POST.
pub(super) fn post_answered(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, out[split + 4..].to_vec())
}

fn logs_request(n: usize) -> Vec<u8> {
    use opentelemetry_proto::tonic::{common::v1::*, logs::v1::*};
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..n)
                    .map(|i| LogRecord {
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("r{i}"))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

pub(super) const PROTO: (&str, &str) = ("Content-Type", "application/x-protobuf");

pub(super) struct Started {
    pub(super) port: u16,
    pub(super) queue: Arc<ByteQueue<Batch>>,
    pub(super) metrics: ComponentMetrics,
    pub(super) trigger: ShutdownTrigger,
    pub(super) task: tokio::task::JoinHandle<()>,
}

/// The receiver named `name` on a free port (64 KiB requests, 256 KiB decompressed and in
/// flight, 500 ms ack timeout), sending into a 16 MiB queue.
pub(super) fn start(name: &str) -> Started {
    start_with_queue(name, 1 << 24)
}

/// As [`start`], sending into a queue of `queue_bytes`.
fn start_with_queue(name: &str, queue_bytes: usize) -> Started {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let queue = Arc::new(ByteQueue::new(
        queue_bytes,
        WhenFull::Block,
        QueueMetrics::detached(),
    ));
    let (trigger, shutdown) = ShutdownTrigger::new();
    let metrics = ComponentMetrics::new("test", name, "otlp");
    let config = OtlpSourceConfig {
        address: ([127, 0, 0, 1], port).into(),
        max_request_bytes: ByteSizeValue(64 * 1024),
        max_decompressed_bytes: ByteSizeValue(256 * 1024),
        max_in_flight_bytes: ByteSizeValue(256 * 1024),
        ack_timeout: DurationValue(Duration::from_millis(500)),
        tls: None,
        grpc_address: None,
        pod_association: Default::default(),
    };
    let cx = SourceContext {
        name: name.into(),
        data_dir: std::env::temp_dir(),
        out: Fanout::new(vec![queue.clone()]),
        taps: None,
        shutdown,
        metrics: metrics.clone(),
        pods: None,
    };
    let task = tokio::spawn(build(&config, cx).unwrap());
    Started {
        port,
        queue,
        metrics,
        trigger,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_after_delivery_and_survives_malformed_requests() {
    let Started {
        port,
        queue,
        metrics,
        trigger,
        task,
    } = start("otlp_receiver_test");

    // A delivering consumer: the receiver's answer waits for this.
    let consumer = {
        let q = queue.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            while let Some(b) = q.pop().await {
                seen += b.len();
                let fail = b.len() == 7; // the designated "sink failure" batch
                if fail {
                    b.acks.fail()
                } else {
                    b.acks.deliver()
                }
            }
            seen
        })
    };

    let r = tokio::task::spawn_blocking(move || {
        let ok = post(port, "/v1/logs", &[PROTO], &logs_request(3));
        let garbage = post(port, "/v1/logs", &[PROTO], b"\xff\xff\xff\xffnot protobuf");
        let bad_gzip = post(
            port,
            "/v1/logs",
            &[PROTO, ("Content-Encoding", "gzip")],
            b"not gzip",
        );
        // 1 MiB of zeros gzips to ~1 KiB but exceeds the 256 KiB decompressed limit.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 1 << 20]).unwrap();
        let bomb = post(
            port,
            "/v1/logs",
            &[PROTO, ("Content-Encoding", "gzip")],
            &enc.finish().unwrap(),
        );
        let too_big = post(port, "/v1/logs", &[PROTO], &vec![0u8; 100 * 1024]);
        let wrong_type = post(port, "/v1/logs", &[("Content-Type", "text/plain")], b"{}");
        let failed = post(port, "/v1/logs", &[PROTO], &logs_request(7));
        let ok_again = post(port, "/v1/logs", &[PROTO], &logs_request(5));
        let zstd_ok = post(
            port,
            "/v1/logs",
            &[PROTO, ("Content-Encoding", "zstd")],
            &zstd::bulk::compress(&logs_request(2), 1).unwrap(),
        );
        let bad_zstd = post(
            port,
            "/v1/logs",
            &[PROTO, ("Content-Encoding", "zstd")],
            b"not zstd",
        );
        (
            ok, garbage, bad_gzip, bomb, too_big, wrong_type, failed, ok_again, zstd_ok, bad_zstd,
        )
    })
    .await
    .unwrap();
    let (ok, garbage, bad_gzip, bomb, too_big, wrong_type, failed, ok_again, zstd_ok, bad_zstd) = r;
    assert_eq!(zstd_ok.0, 200, "zstd bodies are accepted");
    assert_eq!(bad_zstd.0, 400);
    assert_eq!(ok.0, 200);
    assert!(ExportLogsServiceResponse::decode(&ok.1[..])
        .unwrap()
        .partial_success
        .is_none());
    assert_eq!(garbage.0, 400);
    assert_eq!(bad_gzip.0, 400);
    assert_eq!(
        bomb.0, 413,
        "over max_decompressed_bytes: too large, not malformed"
    );
    assert_eq!(too_big.0, 413);
    assert_eq!(wrong_type.0, 415);
    assert_eq!(failed.0, 503, "a failed delivery tells the sender to retry");
    assert_eq!(
        ok_again.0, 200,
        "the receiver keeps working after bad input"
    );
    assert_eq!(metrics.received_events.get(), 3 + 7 + 5 + 2);
    assert_eq!(metrics.sent_events.get(), 3 + 5 + 2);
    let text = crate::telemetry::render();
    for reason in [
        "bad_protobuf",
        "bad_encoding",
        "body_too_large_or_unreadable",
    ] {
        assert!(
            text.contains(&format!("sextant_events_discarded_total{{component=\"otlp_receiver_test\",kind=\"otlp\",reason=\"{reason}\",role=\"test\"}}")),
            "{reason} counted"
        );
    }
    trigger.stop();
    task.await.unwrap();
    queue.close();
    assert_eq!(consumer.await.unwrap(), 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_bytes_are_answered_retry_later_until_room_frees() {
    let Started {
        port,
        queue,
        metrics,
        trigger,
        task,
    } = start("otlp_in_flight_test");
    let consumer = {
        let q = queue.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            while let Some(b) = q.pop().await {
                seen += b.len();
                b.acks.deliver();
            }
            seen
        })
    };
    let r = tokio::task::spawn_blocking(move || {
        // Two slow senders each declare 60 KiB and send half: each holds 120 KiB (its body and
        // the connection's buffer), together 240 KiB of the 256 KiB while their bodies trickle
        // in; a request of more than 8 KiB cannot fit.
        let body = logs_request(2000);
        assert!(body.len() > 8 * 1024, "{}", body.len());
        let mut slow: Vec<TcpStream> = (0..2)
            .map(|_| {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                write!(
                    s,
                    "POST /v1/logs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
                    60 * 1024
                )
                .unwrap();
                s.write_all(&vec![0u8; 30 * 1024]).unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        // 2 × 20 KiB more does not fit: retry later, with nothing taken in.
        let refused = post(port, "/v1/logs", &[PROTO], &body);
        // The slow ones finish (as garbage: 400), which frees their bytes.
        for s in &mut slow {
            s.write_all(&vec![0xffu8; 30 * 1024]).unwrap();
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        }
        let taken = post(port, "/v1/logs", &[PROTO], &body);
        (refused.0, taken.0)
    })
    .await
    .unwrap();
    assert_eq!(r, (503, 200), "refused while full, taken once room freed");
    assert_eq!(
        metrics.received_events.get(),
        2000,
        "only the request taken"
    );
    let text = crate::telemetry::render();
    assert!(
        text.contains(r#"sextant_component_errors_total{component="otlp_in_flight_test",error_type="memory_pressure",kind="otlp",role="test"} 1"#),
        "{text}"
    );
    trigger.stop();
    task.await.unwrap();
    queue.close();
    assert_eq!(consumer.await.unwrap(), 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_length_over_the_limit_is_answered_413_before_the_body_is_sent() {
    let Started {
        port,
        queue,
        trigger,
        task,
        ..
    } = start("otlp_declared_test");
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // 10 MB declared (the limit is 64 KiB), and not one byte of it sent.
        write!(
            s,
            "POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 10000000\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).map(|()| head.to_vec())
    })
    .await
    .unwrap();
    assert_eq!(
        answer
            .map(|h| String::from_utf8_lossy(&h).into_owned())
            .ok()
            .as_deref(),
        Some("HTTP/1.1 413"),
        "answered at once, not after a body that never comes"
    );
    trigger.stop();
    task.await.unwrap();
    queue.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_hint_grows_with_the_sinks_backlog() {
    let Started {
        port,
        queue,
        trigger,
        task,
        ..
    } = start_with_queue("otlp_backlog_test", 32 * 1024);
    let answer = move |body: Vec<u8>| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /v1/logs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        let retry_after = out.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_owned())
        });
        (
            out.split_whitespace().nth(1).unwrap_or("").to_owned(),
            retry_after,
        )
    };
    // Nobody takes from the queue: the first request's batch waits in it, unacknowledged, and
    // is answered retry-later after the ack timeout; with the queue now full, the hint is long.
    let (first, second) =
        tokio::task::spawn_blocking(move || (answer(logs_request(2000)), answer(logs_request(10))))
            .await
            .unwrap();
    assert_eq!(first.0, "503");
    let hint: u64 = second.1.as_deref().unwrap_or("0").parse().unwrap();
    assert_eq!(second.0, "503");
    assert!(hint >= 9, "a full backlog asks for a long wait: {hint} s");
    assert!(queue.bytes() > 0);
    // Drained: the hint is back to a second. (The request is one record, so that its own
    // batch, waiting unacknowledged in the queue, stays well under the 5% that rounds up.)
    while let Some(b) = queue.try_pop() {
        b.acks.fail();
    }
    let third = tokio::task::spawn_blocking(move || answer(logs_request(1)))
        .await
        .unwrap();
    assert_eq!(third, ("503".to_owned(), Some("1".to_owned())), "{third:?}");
    trigger.stop();
    task.await.unwrap();
    queue.close();
}
