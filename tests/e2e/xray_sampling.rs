//! The X-Ray daemon's sampling proxy: the real X-Ray SDK for Python with centralised sampling on
//! asks `sextant agent` (TCP, the same port as its UDP segments) for sampling rules and targets;
//! the agent forwards both, SigV4-signed, to a stand-in for X-Ray (moto does not serve the
//! sampling API; `common::sigv4` verifies each signature independently and answers with X-Ray's
//! documented shapes). The rules it answers decide what the SDK samples: every `legacy-app`
//! segment arrives in the file sink, no `unsampled-app` one does (the SDK's local fallback rule
//! would have sampled the first of each second).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::time::Duration;

use crate::common::sigv4::signature_checking_receiver;
use crate::common::*;

/// Starts centralised sampling, waits for the rules to be loaded, records five segments of each
/// service, prints `<service> <segment id> <sampled>` for each, and stays until the target
/// poller (every 10 s) has reported.
const SAMPLING_APP: &str = r#"
import sys, time
from aws_xray_sdk.core import xray_recorder
xray_recorder.configure(daemon_address=sys.argv[1], sampling=True, context_missing="LOG_ERROR")
sampler = xray_recorder.sampler
sampler.start()
for _ in range(200):
    if sampler._cache.rules:
        break
    time.sleep(0.05)
assert sampler._cache.rules, "no centralised rules"
for service in ["legacy-app", "unsampled-app"] * 5:
    segment = xray_recorder.begin_segment(service)
    xray_recorder.end_segment()
    print(service, segment.id, segment.sampled, flush=True)
time.sleep(float(sys.argv[2]))
"#;

#[test]
fn the_xray_sdk_gets_its_sampling_rules_and_targets_through_the_agent_signed() {
    let dir = tempfile::tempdir().unwrap();
    let (xray_port, seen) = signature_checking_receiver();
    let (admin, port, unreachable_port, closed) =
        (free_port(), free_port(), free_port(), free_port());
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
data_dir: {d}/data
admin: {{ address: "127.0.0.1:{admin}" }}
agent:
  sources:
    xray:
      type: xray_udp
      address: "127.0.0.1:{port}"
      sampling_proxy:
        aws: {{ region: eu-west-1, endpoint: "http://127.0.0.1:{xray_port}" }}
    xray_unreachable:
      type: xray_udp
      address: "127.0.0.1:{unreachable_port}"
      sampling_proxy:
        aws: {{ region: eu-west-1, endpoint: "http://127.0.0.1:{closed}" }}
  sinks:
    files:
      type: file
      inputs: [xray, xray_unreachable]
      path: {d}/out
"#,
            d = dir.path().display(),
        ),
    )
    .unwrap();
    let mut sextant = start_sextant("agent", &cfg, &dir.path().join("sextant.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );
    // Only the two sampling calls, and only as POST.
    let (status, _) = http_get(&format!("http://127.0.0.1:{port}/GetSamplingRules")).unwrap();
    assert_eq!(status, 405);
    let (status, text) =
        http_post_json(&format!("http://127.0.0.1:{port}/PutTraceSegments"), "{}").unwrap();
    assert_eq!(status, 404, "{text}");
    // X-Ray out of reach: a 502 that says why, counted; the SDK would keep its local rules.
    let (status, text) = http_post_json(
        &format!("http://127.0.0.1:{unreachable_port}/GetSamplingRules"),
        "{}",
    )
    .unwrap();
    assert_eq!(status, 502, "{text}");
    let (_, m) = http_get(&format!("http://127.0.0.1:{admin}/metrics")).unwrap();
    assert_eq!(
        metric_sum(
            &m,
            "sextant_component_errors_total",
            &[
                "component=\"xray_unreachable\"",
                "error_type=\"xray_sampling\""
            ]
        ),
        1.0
    );

    let decisions: Vec<(String, String, String)> =
        run_python(SAMPLING_APP, &[&format!("127.0.0.1:{port}"), "12"])
            .lines()
            .map(|l| {
                let p: Vec<&str> = l.split(' ').collect();
                (p[0].into(), p[1].into(), p[2].into())
            })
            .collect();
    assert_eq!(decisions.len(), 10);
    for (service, _, sampled) in &decisions {
        let want = if service == "legacy-app" {
            "True"
        } else {
            "False"
        };
        assert_eq!(sampled, want, "{service}: the centralised rule decides");
    }

    // Both calls reached X-Ray, signed for it with the agent's credentials.
    let calls = seen.lock().unwrap().clone();
    let rules: Vec<_> = calls
        .iter()
        .filter(|c| c.path == "/GetSamplingRules")
        .collect();
    assert!(!rules.is_empty());
    let targets: Vec<_> = calls
        .iter()
        .filter(|c| c.path == "/SamplingTargets")
        .collect();
    assert!(!targets.is_empty(), "the target poller reported: {calls:?}");
    for call in rules.iter().chain(&targets) {
        assert_eq!(call.method, "POST");
        assert_eq!(call.scope.as_deref(), Ok("testing/eu-west-1/xray"));
    }
    assert_eq!(
        calls.len(),
        rules.len() + targets.len(),
        "nothing else called"
    );
    // The SDK's statistics arrive as it sent them: five requests of `legacy`, all sampled.
    let reported: serde_json::Value = serde_json::from_slice(&targets[0].body).unwrap();
    let legacy = reported["SamplingStatisticsDocuments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["RuleName"] == "legacy")
        .unwrap_or_else(|| panic!("{reported}"));
    assert_eq!(legacy["RequestCount"], 5);
    assert_eq!(legacy["SampledCount"], 5);

    // The sampled segments, and only they, were sent and arrive as spans.
    let read = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.path().join("out/traces.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert!(eventually(Duration::from_secs(10), || read().len() >= 5));
    let mut got: Vec<String> = read()
        .iter()
        .map(|s| s["span_id"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    let mut want: Vec<String> = decisions
        .iter()
        .filter(|(s, _, _)| s == "legacy-app")
        .map(|(_, id, _)| id.clone())
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert!(sextant.terminate(Duration::from_secs(15)));
}
