//! The first vertical slice, end to end with real processes: a log line written to a file on a
//! node travels through the agent (file source -> OTLP/HTTP) and the collector (OTLP receiver ->
//! aws_cloudwatch_logs) into CloudWatch Logs (moto server), and the file's checkpoint advances
//! only once CloudWatch Logs has it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use crate::common::*;
use aws_sdk_cloudwatchlogs::Client;

fn append_lines(path: &std::path::Path, range: std::ops::Range<usize>) -> u64 {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in range {
        writeln!(f, "line {i} of the slice test").unwrap();
    }
    f.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_line_reaches_cloudwatch_logs_and_only_then_is_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let app_log = logs.join("app.log");
    let (moto_port, otlp_port, admin_port) = (free_port(), free_port(), free_port());
    let config = dir.path().join("sextant.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir: {data}
admin: {{ address: "127.0.0.1:{admin_port}" }}
drain_deadline: 10s
agent:
  sources:
    app:
      type: file
      include: ["{logs}/*.log"]
      tail: {{ glob_interval: 100ms, checkpoint_interval: 100ms }}
  sinks:
    to_collector:
      type: otlp
      inputs: [app]
      endpoint: http://127.0.0.1:{otlp_port}
      batch: {{ timeout: 200ms }}
      # Longer than the outage below: the collector answers once CloudWatch has the batch.
      request: {{ timeout: 120s, initial_backoff: 100ms, max_backoff: 500ms }}
collector:
  sources:
    otlp:
      type: otlp
      address: 127.0.0.1:{otlp_port}
      ack_timeout: 100s
  sinks:
    cloudwatch:
      type: aws_cloudwatch_logs
      inputs: [otlp]
      log_group: /sextant/e2e
      log_stream: "{{host.name}}/{{log.file.name}}"
      retention_days: 7
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto_port}" }}
      batch: {{ timeout: 200ms }}
      request: {{ timeout: 5s, initial_backoff: 100ms, max_backoff: 500ms }}
"#,
            data = dir.path().join("data").display(),
            logs = logs.display(),
        ),
    )
    .unwrap();
    let store = dir.path().join("data/agent/app/checkpoints.json");
    let size = append_lines(&app_log, 0..500);

    // CloudWatch Logs is down: lines are read and sent, but nothing may be committed.
    let mut sextant = start_sextant("run", &config, &dir.path().join("sextant.log"));
    let metrics_url = format!("http://127.0.0.1:{admin_port}/metrics");
    assert!(
        eventually(Duration::from_secs(20), || http_get(&metrics_url)
            .is_some_and(|(_, m)| {
                metric_sum_or_zero(
                    &m,
                    "sextant_component_errors_total",
                    &["component=\"cloudwatch\"", "error_type=\"dispatch\""],
                ) >= 2.0
            })),
        "the sink should be retrying against the unreachable endpoint"
    );
    let (_, m) = http_get(&metrics_url).unwrap();
    assert_eq!(
        metric_sum(
            &m,
            "sextant_component_received_events_total",
            &["component=\"app\""]
        ),
        500.0
    );
    assert_eq!(
        committed_offset(&store),
        0,
        "nothing is in CloudWatch yet, so nothing may be checkpointed"
    );

    // CloudWatch Logs comes up: every line arrives, in order, once; then the checkpoint moves.
    let _moto = start_moto(moto_port);
    let client = cwl_client(moto_port).await;
    let stream_of = |client: Client| async move {
        let streams = client
            .describe_log_streams()
            .log_group_name("/sextant/e2e")
            .send()
            .await
            .ok()?;
        streams
            .log_streams()
            .first()
            .and_then(|s| s.log_stream_name().map(str::to_owned))
    };
    let mut stream = None;
    for _ in 0..300 {
        stream = stream_of(client.clone()).await;
        if stream.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stream = stream.expect("the sink creates the stream once CloudWatch Logs is up");
    assert!(
        stream.ends_with("/app.log"),
        "stream templated from host.name/log.file.name: {stream}"
    );
    let mut got = wait_for_stream(&client, "/sextant/e2e", &stream, 500).await;
    let expected: Vec<String> = (0..500)
        .map(|i| format!("line {i} of the slice test"))
        .collect();
    assert_eq!(got, expected, "every line, in order, exactly once");
    assert!(
        eventually(Duration::from_secs(10), || committed_offset(&store) == size),
        "checkpoint should reach {size} once delivered, is {}",
        committed_offset(&store)
    );
    let groups = client
        .describe_log_groups()
        .log_group_name_prefix("/sextant/e2e")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(7));

    // More lines while everything is up.
    let size = append_lines(&app_log, 500..600);
    got = wait_for_stream(&client, "/sextant/e2e", &stream, 600).await;
    let expected: Vec<String> = (0..600)
        .map(|i| format!("line {i} of the slice test"))
        .collect();
    assert_eq!(got, expected);
    assert!(eventually(Duration::from_secs(10), || committed_offset(
        &store
    ) == size));
    let (_, m) = http_get(&metrics_url).unwrap();
    assert_eq!(
        metric_sum(
            &m,
            "sextant_component_sent_events_total",
            &["component=\"cloudwatch\""]
        ),
        600.0
    );

    assert!(
        sextant.terminate(Duration::from_secs(15)),
        "sextant should exit cleanly on SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_reach_cloudwatch_logs_whole_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (moto_port, otlp_port, admin_port) = (free_port(), free_port(), free_port());
    let _moto = start_moto(moto_port);
    let config = dir.path().join("sextant.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir: {data}
admin: {{ address: "127.0.0.1:{admin_port}" }}
agent:
  sources:
    app:
      type: file
      include: ["{logs}/*.log"]
      parse_json: true
      tail: {{ glob_interval: 100ms }}
  sinks:
    to_collector:
      type: otlp
      inputs: [app]
      endpoint: http://127.0.0.1:{otlp_port}
      batch: {{ timeout: 100ms }}
collector:
  sources:
    otlp: {{ type: otlp, address: "127.0.0.1:{otlp_port}" }}
  sinks:
    cloudwatch:
      type: aws_cloudwatch_logs
      inputs: [otlp]
      log_group: /sextant/json
      log_stream: "{{log.file.name}}"
      encoding: {{ resource_attributes: [log.file.name] }}
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto_port}" }}
      batch: {{ timeout: 100ms }}
"#,
            data = dir.path().join("data").display(),
            logs = logs.display(),
        ),
    )
    .unwrap();
    // What applications write: a message (as msg), levels, numbers, nested objects, and text
    // with unicode, quotes and backslashes.
    let records = [
        serde_json::json!({"msg": "order placed", "level": "info", "user_id": 42, "path": "/api/orders", "latency_ms": 12.5}),
        serde_json::json!({"msg": "caf\u{e9} \"quoted\" back\\slash \u{1f680}", "level": "warn", "tags": ["a", "b"], "req": {"id": "r-1", "retry": true}}),
        serde_json::json!({"msg": "tab\there\nnewline", "level": "error", "error": "C:\\temp\\x \u{2028}"}),
    ];
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(logs.join("app.log"), text).unwrap();
    let mut sextant = start_sextant("run", &config, &dir.path().join("sextant.log"));

    let client = Client::new(&moto_sdk_config(moto_port).await);
    let mut got = Vec::new();
    for _ in 0..300 {
        got = read_stream_messages(&client, "/sextant/json", "app.log").await;
        if got.len() >= records.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got.len(), records.len(), "{got:?}");
    for (message, record) in got.iter().zip(&records) {
        let back: serde_json::Value = serde_json::from_str(message)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {message}"));
        // Every field of the line as it was written, and the chosen resource field.
        let mut want = record.as_object().unwrap().clone();
        want.insert("log.file.name".into(), "app.log".into());
        assert_eq!(back, serde_json::Value::Object(want));
    }
    assert!(sextant.terminate(Duration::from_secs(15)));
}
