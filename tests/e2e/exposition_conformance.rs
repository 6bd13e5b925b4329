//! The exposition parser against the reference: `promtool check metrics` (Prometheus 2.42, the
//! text format's own parser in Go) on a corpus of bodies, edge cases included. Every body that
//! promtool accepts Sextant reads (promtool's exit 3 is lint advice, not a parse error), and
//! every body promtool refuses Sextant refuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::io::Write;
use std::process::{Command, Stdio};

use sextant_agent::exposition::Format;
use sextant_agent::sources::prometheus_scrape::series::{SeriesSettings, TargetSeries};

const CORPUS: &[&str] = &[
    // Accepted.
    "# HELP http_requests_total The total.\n# TYPE http_requests_total counter\nhttp_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\nhttp_requests_total{method=\"post\",code=\"400\"} 3 1395066363000\n",
    "escaped{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n",
    "# A normal comment.\n\nmetric_without_timestamp_and_labels 12.47\n",
    "something_weird{problem=\"division by zero\"} +Inf -3982045\n",
    "nan_value NaN\nneg_inf -Inf\n",
    "trailing_comma{a=\"b\",} 1\n",
    "empty_labels{} 2\n",
    "# HELP http_request_duration_seconds A histogram.\n# TYPE http_request_duration_seconds histogram\nhttp_request_duration_seconds_bucket{le=\"0.05\"} 24054\nhttp_request_duration_seconds_bucket{le=\"0.1\"} 33444\nhttp_request_duration_seconds_bucket{le=\"+Inf\"} 144320\nhttp_request_duration_seconds_sum 53423\nhttp_request_duration_seconds_count 144320\n",
    "# TYPE rpc_duration_seconds summary\nrpc_duration_seconds{quantile=\"0.01\"} 3102\nrpc_duration_seconds{quantile=\"0.5\"} 4773\nrpc_duration_seconds_sum 1.7560473e+07\nrpc_duration_seconds_count 2693\n",
    "# TYPE histogram_without_inf histogram\nhistogram_without_inf_bucket{le=\"1\"} 1\nhistogram_without_inf_count 1\n",
    "name_with:colons 1\n",
    "spaces_in_value{a=\"x y  z\"} 1\n",
    "# TYPE untyped_metric untyped\nuntyped_metric 1\n",
    "",
    // Refused.
    "dup{a=\"1\",a=\"2\"} 1\n",
    "0starts_with_digit 1\n",
    "no_value\n",
    "bad_value abc\n",
    "unterminated{a=\"b} 1\n",
    "unquoted{a=b} 1\n",
    "# TYPE bad_type frobnicator\n",
    "float_timestamp 1 1.5\n",
    "too_many_fields 1 2 3\n",
    "bad_label_name{0a=\"b\"} 1\n",
    "{a=\"b\"} 1\n",
    "labels_not_separated{a=\"1\" b=\"2\"} 1\n",
];

/// promtool's verdict: `true` when it parses the body (exit 0, or 3 for lint problems only).
fn promtool_accepts(body: &str) -> bool {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("promtool must be installed (scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    match child.wait().unwrap().code() {
        Some(0 | 3) => true,
        Some(1) => false,
        other => panic!("promtool exited {other:?} on {body:?}"),
    }
}

fn sextant_accepts(body: &str) -> bool {
    let mut series = TargetSeries::new(SeriesSettings::default(), Vec::new());
    series.ingest(body.as_bytes(), Format::Text, 1).is_ok()
}

#[test]
fn the_parser_accepts_and_refuses_what_promtool_does() {
    let mut disagreements = Vec::new();
    let mut refused = 0;
    for body in CORPUS {
        let reference = promtool_accepts(body);
        refused += usize::from(!reference);
        if sextant_accepts(body) != reference {
            disagreements.push((body, reference));
        }
    }
    assert!(
        refused >= 10,
        "the corpus has only {refused} bodies promtool refuses"
    );
    assert!(
        disagreements.is_empty(),
        "(body, promtool accepts): {disagreements:#?}"
    );
}
