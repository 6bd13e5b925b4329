//! The CloudWatch Logs sink through throttling, 5xx answers and timeouts (a fault-injecting
//! proxy from the test crate in front of moto, since moto never fails): nothing is lost, nothing
//! is sent twice, and each kind of retry is counted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::io::Write;
use std::time::Duration;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_5xx_and_timeouts_are_retried_until_every_line_is_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let proxy = FaultProxy::start(
        moto_port,
        "Logs_20140328.PutLogEvents",
        vec![
            Fault::Throttle,
            Fault::Throttle,
            Fault::Unavailable,
            Fault::Hang(Duration::from_secs(3)),
            Fault::Throttle,
        ],
    );
    let admin = free_port();
    let cfg = dir.path().join("collector.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
data_dir: {d}/data
admin: {{ address: "127.0.0.1:{admin}" }}
collector:
  sources:
    app:
      type: file
      include: ["{d}/logs/*.log"]
      tail: {{ glob_interval: 100ms }}
  sinks:
    cloudwatch:
      type: aws_cloudwatch_logs
      inputs: [app]
      log_group: /sextant/faults
      log_stream: "{{log.file.name}}"
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{proxy}" }}
      batch: {{ max_events: 100, timeout: 100ms }}
      request: {{ timeout: 1s, initial_backoff: 50ms, max_backoff: 200ms }}
"#,
            d = dir.path().display(),
            proxy = proxy.port
        ),
    )
    .unwrap();
    let mut f = std::fs::File::create(dir.path().join("logs/app.log")).unwrap();
    for i in 0..300 {
        writeln!(f, "event {i}").unwrap();
    }
    drop(f);
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));

    let client = cwl_client(moto_port).await;
    let got = wait_for_stream(&client, "/sextant/faults", "app.log", 300).await;
    let want: Vec<String> = (0..300).map(|i| format!("event {i}")).collect();
    assert_eq!(got, want, "every line once, in order, despite the faults");
    assert_eq!(
        proxy.injected.load(std::sync::atomic::Ordering::SeqCst),
        5,
        "all five faults were hit"
    );

    // The sink counts a request once its answer is in, which can be just after moto shows it.
    let metrics_url = format!("http://127.0.0.1:{admin}/metrics");
    assert!(eventually(Duration::from_secs(10), || {
        http_get(&metrics_url).is_some_and(|(_, m)| {
            metric_sum(
                &m,
                "sextant_component_sent_events_total",
                &["component=\"cloudwatch\""],
            ) == 300.0
        })
    }));
    let (_, m) = http_get(&metrics_url).unwrap();
    let errors = |t: &str| {
        metric_sum(
            &m,
            "sextant_component_errors_total",
            &["component=\"cloudwatch\"", &format!("error_type=\"{t}\"")],
        )
    };
    assert_eq!(errors("throttled"), 3.0);
    assert_eq!(errors("server_error"), 1.0);
    assert_eq!(errors("timeout"), 1.0);
    let count = |name: &str| metric_sum(&m, name, &["component=\"cloudwatch\""]);
    assert_eq!(
        count("sextant_component_received_events_total"),
        300.0,
        "the sink counts what it takes in"
    );
    assert_eq!(
        metric_sum(
            &m,
            "sextant_component_retries_total",
            &["component=\"cloudwatch\""]
        ),
        5.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "sextant_component_sent_events_total",
            &["component=\"cloudwatch\""]
        ),
        300.0
    );
    assert!(collector.terminate(Duration::from_secs(15)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_refused_for_good_is_dead_lettered_and_later_lines_still_flow() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let proxy = FaultProxy::start(
        moto_port,
        "Logs_20140328.PutLogEvents",
        vec![Fault::Invalid],
    );
    let admin = free_port();
    let cfg = dir.path().join("collector.yaml");
    let dlq = dir.path().join("dlq/cloudwatch.jsonl");
    std::fs::write(
        &cfg,
        format!(
            r#"
data_dir: {d}/data
admin: {{ address: "127.0.0.1:{admin}" }}
collector:
  sources:
    app:
      type: file
      include: ["{d}/logs/*.log"]
      tail: {{ glob_interval: 100ms, checkpoint_interval: 100ms }}
  sinks:
    cloudwatch:
      type: aws_cloudwatch_logs
      inputs: [app]
      log_group: /sextant/dlq
      log_stream: app
      dead_letter: {{ path: "{dlq}" }}
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{proxy}" }}
      batch: {{ timeout: 100ms }}
      request: {{ timeout: 2s, initial_backoff: 50ms, max_backoff: 200ms }}
"#,
            d = dir.path().display(),
            dlq = dlq.display(),
            proxy = proxy.port
        ),
    )
    .unwrap();
    let log = dir.path().join("logs/app.log");
    let write = |range: std::ops::Range<usize>| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        for i in range {
            writeln!(f, "event {i}").unwrap();
        }
    };
    write(0..50);
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    let dead = || {
        std::fs::read_to_string(&dlq)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(20), || dead().len() == 50),
        "the refused request's 50 events are dead-lettered"
    );
    let d = dead();
    assert_eq!(d[0]["reason"], "refused");
    // The message as it was sent (the default encoding: one JSON object per record).
    assert_eq!(d[0]["record"]["message"], r#"{"message":"event 0"}"#);
    assert_eq!(d[49]["record"]["message"], r#"{"message":"event 49"}"#);
    assert_eq!(d[0]["record"]["log_group"], "/sextant/dlq");

    // A refusal is final for those lines: the checkpoint moves past them, and later lines flow.
    write(50..80);
    let client = cwl_client(moto_port).await;
    let got = wait_for_stream(&client, "/sextant/dlq", "app", 30).await;
    assert_eq!(
        got,
        (50..80).map(|i| format!("event {i}")).collect::<Vec<_>>()
    );
    let size = std::fs::metadata(&log).unwrap().len();
    let store = dir.path().join("data/collector/app/checkpoints.json");
    assert!(eventually(Duration::from_secs(10), || committed_offset(
        &store
    ) == size));
    let (_, m) = http_get(&format!("http://127.0.0.1:{admin}/metrics")).unwrap();
    assert_eq!(
        metric_sum(
            &m,
            "sextant_component_dropped_events_total",
            &["component=\"cloudwatch\"", "reason=\"refused\""]
        ),
        50.0
    );
    assert_eq!(dead().len(), 50, "nothing else refused");
    assert!(collector.terminate(Duration::from_secs(15)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_set_even_when_put_retention_policy_fails_at_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    // The group is created at once; its retention call is throttled, then fails with a 503.
    let proxy = FaultProxy::start(
        moto_port,
        "Logs_20140328.PutRetentionPolicy",
        vec![Fault::Throttle, Fault::Unavailable],
    );
    let cfg = dir.path().join("collector.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
data_dir: {d}/data
admin: {{ address: "127.0.0.1:{admin}" }}
collector:
  sources:
    app: {{ type: file, include: ["{d}/logs/*.log"], tail: {{ glob_interval: 100ms }} }}
  sinks:
    cloudwatch:
      type: aws_cloudwatch_logs
      inputs: [app]
      log_group: /sextant/retention
      log_stream: "{{log.file.name}}"
      retention_days: 14
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{proxy}" }}
      batch: {{ timeout: 100ms }}
      request: {{ initial_backoff: 50ms, max_backoff: 200ms }}
"#,
            d = dir.path().display(),
            admin = free_port(),
            proxy = proxy.port
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("logs/app.log"), "one\ntwo\n").unwrap();
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    let client = cwl_client(moto_port).await;
    let got = wait_for_stream(&client, "/sextant/retention", "app.log", 2).await;
    assert_eq!(got, ["one", "two"]);
    assert_eq!(
        proxy.injected.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "both faults were hit"
    );
    let groups = client
        .describe_log_groups()
        .log_group_name_prefix("/sextant/retention")
        .send()
        .await
        .unwrap();
    let group = &groups.log_groups()[0];
    assert_eq!(group.log_group_name(), Some("/sextant/retention"));
    assert_eq!(
        group.retention_in_days(),
        Some(14),
        "the retention step was retried until it succeeded"
    );
    assert!(collector.terminate(Duration::from_secs(15)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_check_shows_in_readyz_without_blocking_start_and_clears_when_it_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let moto_port = free_port();
    let down = free_port(); // nothing listens here
    let admin = free_port();
    let cfg = dir.path().join("collector.yaml");
    let config = |endpoint: u16, healthcheck: bool| {
        format!(
            r#"
data_dir: {d}/data
admin: {{ address: "127.0.0.1:{admin}" }}
collector:
  sources:
    app: {{ type: file, include: ["{d}/logs/*.log"] }}
  sinks:
    cloudwatch:
      type: aws_cloudwatch_logs
      inputs: [app]
      log_group: /sextant/health
      log_stream: app
      healthcheck: {healthcheck}
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{endpoint}" }}
      request: {{ timeout: 1s, initial_backoff: 50ms, max_backoff: 200ms }}
"#,
            d = dir.path().display()
        )
    };
    let readyz = || http_get(&format!("http://127.0.0.1:{admin}/readyz"));
    let healthy = || {
        // None until the first check has finished.
        http_get(&format!("http://127.0.0.1:{admin}/metrics")).and_then(|(_, m)| {
            metric_read(
                &m,
                "sextant_component_healthcheck_ok",
                &["component=\"cloudwatch\""],
            )
        })
    };

    // CloudWatch Logs unreachable: the collector starts, and /readyz says which sink is failing.
    std::fs::write(&cfg, config(down, true)).unwrap();
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("c1.log"));
    assert!(
        eventually(Duration::from_secs(20), || readyz().is_some_and(
            |(status, body)| {
                status == 503
                    && body.contains("cloudwatch (aws_cloudwatch_logs: health check failing)")
            }
        )),
        "{:?}",
        readyz()
    );
    assert_eq!(healthy(), Some(0.0));
    assert!(collector.terminate(Duration::from_secs(15)));

    // The same with `healthcheck: false`: ready.
    std::fs::write(&cfg, config(down, false)).unwrap();
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("c2.log"));
    assert!(eventually(Duration::from_secs(10), || readyz()
        .is_some_and(|(status, _)| status == 200)));
    assert!(collector.terminate(Duration::from_secs(15)));

    // Reachable (moto): the check passes.
    let _moto = start_moto(moto_port);
    std::fs::write(&cfg, config(moto_port, true)).unwrap();
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("c3.log"));
    assert!(eventually(Duration::from_secs(20), || healthy() == Some(1.0)));
    assert_eq!(readyz().map(|r| r.0), Some(200));
    assert!(collector.terminate(Duration::from_secs(15)));
}
