//! What ships beside the binary, checked against the binary: the default alert rules
//! (`alerts/`) pass their unit tests in both `promtool test rules` (Debian's Prometheus 2.42,
//! the reference) and `sextant test-rules`, every alert is tested and documented in
//! `docs/runbook.md`; and every metric name an alert or a Grafana dashboard (`dashboards/`)
//! queries is one a running `sextant run` really exports — read from its `/metrics` and from
//! what its host metrics and scrapes deliver, never from a list kept by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sextant_rules::window::SelectorFilter;

use crate::common::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files_in(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let (code, text) = run_program(program, args);
    (code == 0, text)
}

/// Every alerting rule of `alerts/*.rules.yml`: (name, rule as YAML).
fn default_alerts() -> Vec<(String, serde_yaml_ng::Value)> {
    let mut alerts = Vec::new();
    for file in files_in(&repo().join("alerts"), ".rules.yml") {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for group in doc["groups"].as_sequence().unwrap() {
            for rule in group["rules"].as_sequence().unwrap() {
                if let Some(name) = rule["alert"].as_str() {
                    alerts.push((name.to_string(), rule.clone()));
                }
            }
        }
    }
    alerts
}

#[test]
fn default_alerts_pass_their_unit_tests_in_promtool_and_sextant_and_each_is_tested_and_documented()
{
    let alerts_dir = repo().join("alerts");
    for file in files_in(&alerts_dir, ".rules.yml") {
        let (ok, out) = run("promtool", &["check", "rules", file.to_str().unwrap()]);
        assert!(ok, "promtool check rules {}:\n{out}", file.display());
    }
    let tests = files_in(&alerts_dir.join("tests"), ".test.yml");
    assert!(tests.len() >= 2, "{tests:?}");
    let mut tested = BTreeSet::new();
    for file in &tests {
        let path = file.to_str().unwrap();
        let (ok, out) = run("promtool", &["test", "rules", path]);
        assert!(ok, "promtool test rules {path}:\n{out}");
        let (ok, out) = run(env!("CARGO_BIN_EXE_sextant"), &["test-rules", path]);
        assert!(ok, "sextant test-rules {path}:\n{out}");
        // An alert counts as tested when some case expects it to fire.
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for case in doc["tests"].as_sequence().unwrap() {
            for check in case["alert_rule_test"].as_sequence().into_iter().flatten() {
                if check["exp_alerts"]
                    .as_sequence()
                    .is_some_and(|a| !a.is_empty())
                {
                    tested.insert(check["alertname"].as_str().unwrap().to_string());
                }
            }
        }
    }
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).unwrap();
    let sections: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.trim().to_lowercase())
        .collect();
    let alerts = default_alerts();
    assert!(alerts.len() >= 15, "{} alerts", alerts.len());
    let mut problems = Vec::new();
    for (name, rule) in &alerts {
        if !tested.contains(name) {
            problems.push(format!("{name}: no unit test expects it to fire"));
        }
        if !["critical", "warning", "info"]
            .contains(&rule["labels"]["severity"].as_str().unwrap_or(""))
        {
            problems.push(format!("{name}: severity {:?}", rule["labels"]["severity"]));
        }
        for key in ["summary", "description"] {
            if rule["annotations"][key].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: no {key}"));
            }
        }
        let url = rule["annotations"]["runbook_url"].as_str().unwrap_or("");
        let anchor = url.rsplit_once("docs/runbook.md#").map(|(_, a)| a);
        if anchor != Some(name.to_lowercase().as_str()) || !sections.contains(&name.to_lowercase())
        {
            problems.push(format!(
                "{name}: runbook_url {url:?} is not its section of docs/runbook.md"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A PromQL expression of a dashboard with Grafana's variables replaced by something that
/// parses: `$__rate_interval` and friends by a duration, `$var` / `${var}` / `${var:opt}` by a
/// plain word (they stand in label values and regexes).
fn without_grafana_variables(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').expect("unclosed ${");
            (braced[..end].split(':').next().unwrap(), end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        out.push_str(if name.starts_with("__") { "5m" } else { "x" });
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Every PromQL expression of a dashboard: panel targets (rows' panels too) and the
/// `label_values(<selector>, label)` / `query_result(<expr>)` queries of its variables.
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<String> {
    fn panels(list: &serde_json::Value, out: &mut Vec<String>) {
        for panel in list.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(expr.to_string());
                }
            }
            panels(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] != "query" {
            continue;
        }
        let query = var["query"]["query"]
            .as_str()
            .or(var["query"].as_str())
            .unwrap_or("");
        if let Some(inner) = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
        {
            let selector = inner.rsplit_once(',').map_or(inner, |(s, _)| s);
            out.push(selector.trim().to_string());
        } else if let Some(inner) = query
            .strip_prefix("query_result(")
            .and_then(|q| q.strip_suffix(')'))
        {
            out.push(inner.to_string());
        } else {
            panic!(
                "variable {} has a query of no known kind: {query:?}",
                var["name"]
            );
        }
    }
    out
}

/// Metric names each alert and dashboard expression needs, by where they are used.
fn names_queried() -> BTreeMap<String, BTreeSet<String>> {
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut need = |origin: String, expr: &str| {
        let parsed = sextant_rules::promql::parse(expr)
            .unwrap_or_else(|e| panic!("{origin}: {expr:?} does not parse: {e}"));
        let filter = SelectorFilter::new([&parsed]);
        let (names, unnamed) = filter.metric_names();
        assert!(!unnamed, "{origin}: {expr:?} selects without a metric name");
        for name in names {
            used.entry(name.to_string())
                .or_default()
                .insert(origin.clone());
        }
    };
    for (name, rule) in default_alerts() {
        need(format!("alert {name}"), rule["expr"].as_str().unwrap());
    }
    for file in files_in(&repo().join("dashboards"), ".json") {
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let title = dashboard["title"].as_str().unwrap().to_string();
        let variables: BTreeSet<&str> = dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();
        for wanted in ["datasource", "cluster", "node"] {
            assert!(
                variables.contains(wanted),
                "{title}: no {wanted} variable ({variables:?})"
            );
        }
        let exprs = dashboard_exprs(&dashboard);
        assert!(exprs.len() >= 4, "{title}: {} queries", exprs.len());
        for expr in exprs {
            need(
                format!("dashboard {title:?}"),
                &without_grafana_variables(&expr),
            );
        }
    }
    used
}

/// The series names of a Prometheus text exposition (histograms' `_bucket`, `_sum`, `_count`).
fn exposition_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// A `sextant run` that exercises what the alerts and dashboards watch: a memory budget, a
/// file source in CRI format (one line that is not), host metrics, its own `/metrics`
/// scraped, a scrape of a port nobody serves (errors), a sink to a port nobody serves
/// (retries, failed batches, a failing health check), a queue that drops, a disk-buffered
/// collector sink, and rules: an alert that always fires (`ALERTS`) and a rule whose query
/// fails at every evaluation (a duplicate series on the "one" side of a match).
fn exporting_config(dir: &Path, admin: u16, otlp: u16, closed: u16) -> String {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("app.log"),
        "2026-12-03T07:00:00.000000000Z stdout F good line\nnot a CRI line\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules.yml"),
        r#"groups:
  - name: exported
    interval: 1s
    rules:
      - alert: Always
        expr: vector(1)
      - record: fails
        expr: vector(1) * on () group_left () (vector(1) or label_replace(vector(1), "x", "y", "", ""))
"#,
    )
    .unwrap();
    format!(
        r#"
data_dir: {data}
admin: {{ address: "127.0.0.1:{admin}" }}
memory: {{ limit: 1GiB }}
agent:
  sources:
    app:
      type: file
      format: cri
      include: ["{logs}/*.log"]
    host:
      type: host_metrics
      interval: 1s
    self:
      type: prometheus_scrape
      scrape_interval: 1s
      scrape_configs:
        - job_name: sextant
          static_configs: [{{ targets: ["127.0.0.1:{admin}"] }}]
        - job_name: nobody
          static_configs: [{{ targets: ["127.0.0.1:{closed}"] }}]
  sinks:
    to_collector:
      type: otlp
      inputs: [app, host, self]
      endpoint: "http://127.0.0.1:{otlp}"
    nowhere:
      type: otlp
      inputs: [app, host]
      endpoint: "http://127.0.0.1:{closed}"
      request: {{ max_attempts: 2, initial_backoff: 10ms, timeout: 1s }}
      queue: {{ max_bytes: 1KiB, when_full: drop_newest }}
collector:
  sources:
    otlp: {{ type: otlp, address: "127.0.0.1:{otlp}" }}
    rules: {{ type: prometheus_rules, inputs: [otlp], rule_files: ["{rules}"] }}
  sinks:
    files:
      type: file
      inputs: [otlp, rules]
      path: {out}
      queue: {{ disk: {{ max_bytes: 64MiB }} }}
"#,
        data = dir.join("data").display(),
        logs = logs.display(),
        out = dir.join("out").display(),
        rules = dir.join("rules.yml").display(),
    )
}

#[test]
fn alerts_and_dashboards_query_only_metrics_that_sextant_exports() {
    let used = names_queried();
    let dir = tempfile::tempdir().unwrap();
    let (admin, otlp, closed) = (free_port(), free_port(), free_port());
    let config = dir.path().join("sextant.yaml");
    std::fs::write(&config, exporting_config(dir.path(), admin, otlp, closed)).unwrap();
    let mut sextant = start_sextant("run", &config, &dir.path().join("sextant.log"));
    let mut exported = BTreeSet::new();
    let mut exposition = String::new();
    let all_there = eventually(Duration::from_secs(45), || {
        if let Some((200, text)) = http_get(&format!("http://127.0.0.1:{admin}/metrics")) {
            exported.extend(exposition_names(&text));
            exposition = text;
        }
        for record in metric_records(&dir.path().join("out")) {
            if let Some(name) = record["name"].as_str() {
                exported.insert(name.to_string());
            }
        }
        used.keys().all(|n| exported.contains(n))
    });
    sextant.terminate(Duration::from_secs(10));
    if !all_there {
        let missing: Vec<String> = used
            .iter()
            .filter(|(n, _)| !exported.contains(*n))
            .map(|(n, by)| {
                format!(
                    "{n} (queried by {})",
                    by.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        panic!(
            "not exported by sextant run:\n  {}\nexported: {exported:?}\nlog:\n{}",
            missing.join("\n  "),
            std::fs::read_to_string(dir.path().join("sextant.log")).unwrap_or_default()
        );
    }
    // The check has teeth: a name that is not exported is caught.
    assert!(!exported.contains("sextant_events_lost_total"));
    // The budget the dashboards plot memory against: 80% and 90% of `memory.limit` (1 GiB).
    let gib = 1u64 << 30;
    for (limit, share) in [("soft", 80), ("hard", 90)] {
        assert_eq!(
            metric_read(
                &exposition,
                "sextant_memory_limit_bytes",
                &[&format!("limit=\"{limit}\"")]
            ),
            Some((gib / 100 * share) as f64),
            "{limit} limit"
        );
    }
}
