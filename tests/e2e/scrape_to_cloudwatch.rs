//! Scraped metrics across the hop into CloudWatch: a real node_exporter and a counter served by
//! the test (its values known) scraped by `sextant agent`, sent to `sextant collector`, published
//! by `aws_cloudwatch_metrics` into moto and read back with GetMetricData. The counter's
//! CloudWatch Sum equals its increase over the run (its first scrape is a baseline); when
//! node_exporter is killed, `up` for its job becomes 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;

/// Serves `requests_total` going up by 5 at each of its first `rises` scrapes, then staying.
fn counter_target(rises: u64) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicU64::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            let body = format!(
                "# TYPE requests_total counter\nrequests_total{{path=\"/a\"}} {}\n",
                5 * n.min(rises)
            );
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    (port, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scraped_counter_sums_to_its_increase_in_cloudwatch_and_a_dead_target_is_up_0() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let node_port = free_port();
    let mut node_exporter = start_server(
        "node_exporter",
        "prometheus-node-exporter",
        &[format!("--web.listen-address=127.0.0.1:{node_port}")],
        node_port,
    );
    let (app_port, served) = counter_target(6);

    let (collector_admin, otlp) = (free_port(), free_port());
    let cfg = crate::common::hop::collector_config(
        dir.path(),
        collector_admin,
        otlp,
        &format!(
            r#"    cloudwatch:
      type: aws_cloudwatch_metrics
      inputs: [otlp]
      namespace: Sextant/Scrape
      dimensions: [[service.name]]
      dimension_names: {{ service.name: Job }}
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto_port}" }}
      batch: {{ timeout: 200ms }}
"#
        ),
    );
    let _collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{collector_admin}/readyz"),
        Duration::from_secs(20),
    );

    let agent_admin = free_port();
    let agent_cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &agent_cfg,
        format!(
            r#"
data_dir: {data}
admin: {{ address: "127.0.0.1:{agent_admin}" }}
agent:
  sources:
    scrape:
      type: prometheus_scrape
      scrape_interval: 1s
      scrape_configs:
        - job_name: node
          static_configs: [{{ targets: ["127.0.0.1:{node_port}"] }}]
          # Only what this test reads back, so moto stays quick.
          metric_relabel_configs: [{{ source_labels: [__name__], regex: "node_load1", action: keep }}]
        - job_name: app
          static_configs: [{{ targets: ["127.0.0.1:{app_port}"] }}]
  sinks:
    hop:
      type: otlp
      inputs: [scrape]
      endpoint: "http://127.0.0.1:{otlp}"
      batch: {{ timeout: 100ms }}
"#,
            data = dir.path().join("agent-data").display(),
        ),
    )
    .unwrap();
    let _agent = start_sextant("agent", &agent_cfg, &dir.path().join("agent.log"));

    // Six rising scrapes (5, 10, ... 30): the first is the baseline, so the increase is 25.
    let client = cloudwatch(moto_port).await;
    let app = [("Job", "app")];
    let mut sum = 0.0;
    for _ in 0..100 {
        sum = statistic(&client, "Sextant/Scrape", "requests_total", &app, "Sum").await;
        if served.load(Ordering::SeqCst) > 8 && sum >= 25.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(sum, 25.0, "CloudWatch Sum of the scraped counter");
    assert_eq!(
        statistic(&client, "Sextant/Scrape", "up", &app, "Minimum").await,
        1.0
    );

    // node_exporter dies: `up` for job node goes 1 → 0.
    let node = [("Job", "node")];
    assert!(
        statistic(
            &client,
            "Sextant/Scrape",
            "node_load1",
            &node,
            "SampleCount"
        )
        .await
            >= 1.0
    );
    assert_eq!(
        statistic(&client, "Sextant/Scrape", "up", &node, "Maximum").await,
        1.0
    );
    node_exporter.kill9();
    let mut minimum = 1.0;
    for _ in 0..50 {
        minimum = statistic(&client, "Sextant/Scrape", "up", &node, "Minimum").await;
        if minimum == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(minimum, 0.0, "up of the killed target");
    // The counter did not move after its six rises, whatever else was scraped.
    assert_eq!(
        statistic(&client, "Sextant/Scrape", "requests_total", &app, "Sum").await,
        25.0
    );
}
