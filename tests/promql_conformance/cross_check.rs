//! Checks the expected values of our own test files against Prometheus itself: every eval
//! becomes a `promql_expr_test` of a promtool rule unit test (Debian's Prometheus 2.42, the
//! reference), with the loads since the last `clear` as its input series. Each test expects
//! one sample no query returns, so promtool fails every test and prints what it got, which
//! is parsed back and compared with what the file expects (Prometheus's tolerance). An eval
//! expected to fail must fail in promtool too.
//!
//! Evals whose results promtool cannot show (strings, range vectors) are not checked here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command as Process;

use sextant_rules::labels::Labels;
use sextant_rules::promql::value::{format_go_float, is_stale_marker};
use sextant_rules::promqltest::{almost_equal, parse, Command, EvalCase, Expectation};
use sextant_rules::series_notation::parse_series_labels;

/// One query at one time, as promtool will evaluate it.
struct Probe {
    line: usize,
    query: String,
    time: i64,
    expect_failure: bool,
    expected: Vec<(Labels, f64)>,
}

/// Returns the disagreements between `path`'s expectations and promtool, one per line.
pub fn disagreements(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut yaml = String::from("evaluation_interval: 1m\ntests:\n");
    let mut probes = Vec::new();
    let mut loaded: BTreeMap<Labels, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut steps: Vec<i64> = Vec::new();
    for (_, command) in parse(&text) {
        match command {
            Ok(Command::Load { step, series }) => {
                steps.push(step);
                for s in series {
                    let samples = loaded.entry(s.labels.clone()).or_default();
                    for (k, value) in s.values.iter().enumerate() {
                        if let Some(v) = value {
                            let t = k as i64 * step;
                            // As the store appends: a sample before the series' last is dropped.
                            if samples.last_key_value().is_none_or(|(&last, _)| t >= last) {
                                samples.insert(t, *v);
                            }
                        }
                    }
                }
            }
            Ok(Command::Clear) => {
                loaded.clear();
                steps.clear();
            }
            Ok(Command::Eval(eval)) => {
                if unchecked(&text, eval.line) {
                    continue;
                }
                let new_probes = probes_of(&eval);
                if new_probes.is_empty() {
                    continue;
                }
                write_test_group(&mut yaml, &loaded, &steps, &new_probes);
                probes.extend(new_probes);
            }
            Ok(Command::Skip) | Err(_) => {}
        }
    }
    if probes.is_empty() {
        return Ok(Vec::new());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("cross_check.yml");
    std::fs::write(&file, &yaml).map_err(|e| e.to_string())?;
    let output = Process::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(&file)
        .output()
        .map_err(|e| {
            format!("cannot run promtool (scripts/test installs Debian's prometheus): {e}")
        })?;
    // promtool reports failures on standard error.
    let stdout = String::from_utf8_lossy(&output.stderr);
    let results = parse_promtool_output(&stdout);
    if results.len() != probes.len() {
        return Err(format!(
            "promtool reported {} results for {} queries:\n{stdout}\n{}",
            results.len(),
            probes.len(),
            String::from_utf8_lossy(&output.stdout)
        ));
    }
    let mut found = Vec::new();
    for (probe, result) in probes.iter().zip(results) {
        let at = format!(
            "line {}: {} at {}s",
            probe.line,
            probe.query,
            probe.time as f64 / 1000.0
        );
        match result {
            PromtoolResult::Error(e) if !probe.expect_failure => {
                found.push(format!("{at}: Prometheus fails: {e}"))
            }
            PromtoolResult::Error(_) => {}
            PromtoolResult::Samples(_) if probe.expect_failure => {
                found.push(format!("{at}: Prometheus does not fail"))
            }
            PromtoolResult::Samples(got) => {
                let agrees = got.len() == probe.expected.len()
                    && got.iter().all(|(labels, v)| {
                        probe
                            .expected
                            .iter()
                            .any(|(l, e)| l == labels && almost_equal(*e, *v))
                    });
                if !agrees {
                    found.push(format!(
                        "{at}:\n  file expects:{}\n  Prometheus returns:{}",
                        show(&probe.expected),
                        show(&got)
                    ));
                }
            }
        }
    }
    Ok(found)
}

/// The comment that exempts the eval below it: promtool cannot show Prometheus's answer to
/// every query. Its loader holds only the samples up to the evaluation time (so negative
/// offsets and `@` in the future see nothing), and each probe is an instant query (so
/// `start()`/`end()` in a range eval are the probe's own time).
const UNCHECKED: &str = "# not checkable with promtool:";

fn unchecked(text: &str, eval_line: usize) -> bool {
    eval_line >= 2
        && text
            .lines()
            .nth(eval_line - 2)
            .is_some_and(|l| l.trim_start().starts_with(UNCHECKED))
}

fn probes_of(eval: &EvalCase) -> Vec<Probe> {
    if eval.expected_string.is_some() {
        return Vec::new();
    }
    let expect_failure = matches!(eval.expectation, Expectation::Fail { .. });
    let mut probes = Vec::new();
    let mut t = eval.start;
    let mut k = 0usize;
    loop {
        let expected = if let Some(v) = eval.expected_scalar {
            vec![(Labels::new(), v)]
        } else {
            eval.expected
                .iter()
                .filter_map(|s| {
                    s.values
                        .get(k)
                        .copied()
                        .flatten()
                        .map(|v| (s.labels.clone(), v))
                })
                .collect()
        };
        probes.push(Probe {
            line: eval.line,
            query: eval.query.clone(),
            time: t,
            expect_failure,
            expected,
        });
        if eval.step == 0 {
            break;
        }
        t += eval.step;
        k += 1;
        if t > eval.end {
            break;
        }
    }
    probes
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn write_test_group(
    yaml: &mut String,
    loaded: &BTreeMap<Labels, BTreeMap<i64, f64>>,
    steps: &[i64],
    probes: &[Probe],
) {
    let interval = steps.iter().copied().filter(|&s| s > 0).fold(0, gcd).max(1);
    let _ = writeln!(yaml, "  - interval: {interval}ms\n    input_series:");
    for (labels, samples) in loaded {
        let Some((&last, _)) = samples.last_key_value() else {
            continue;
        };
        let mut values = Vec::new();
        let mut gap = 0usize;
        let mut t = 0;
        while t <= last {
            match samples.get(&t) {
                None => gap += 1,
                Some(v) => {
                    if gap > 0 {
                        values.push(if gap == 1 {
                            "_".to_string()
                        } else {
                            format!("_x{gap}")
                        });
                        gap = 0;
                    }
                    values.push(series_value(*v));
                }
            }
            t += interval;
        }
        let _ = writeln!(
            yaml,
            "      - series: '{}'\n        values: '{}'",
            labels.to_string().replace('\'', "''"),
            values.join(" ")
        );
    }
    let _ = writeln!(yaml, "    promql_expr_test:");
    for probe in probes {
        let _ = writeln!(
            yaml,
            "      - expr: '{}'\n        eval_time: {}ms\n        exp_samples:\n          - labels: '{{__never_returned__=\"1\"}}'\n            value: 0",
            probe.query.replace('\'', "''"),
            probe.time
        );
    }
}

fn series_value(v: f64) -> String {
    if is_stale_marker(v) {
        "stale".into()
    } else if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v:?}")
    }
}

enum PromtoolResult {
    Error(String),
    Samples(Vec<(Labels, f64)>),
}

/// Reads promtool's failure report: per query an `expr: "...", time: ...,` line, then either
/// `err: ...` on it or `exp:`/`got:` lines.
fn parse_promtool_output(stdout: &str) -> Vec<PromtoolResult> {
    let mut results = Vec::new();
    for line in stdout.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("expr: ") {
            if let Some(i) = trimmed.rfind(", err: ") {
                results.push(PromtoolResult::Error(trimmed[i + 7..].to_string()));
            }
        } else if let Some(got) = trimmed.strip_prefix("got: ") {
            results.push(PromtoolResult::Samples(parse_samples(got)));
        }
    }
    results
}

/// `{a="b"} 1E+00, {c="d"} NaN` (or `nil`).
fn parse_samples(mut text: &str) -> Vec<(Labels, f64)> {
    let mut samples = Vec::new();
    if text.trim() == "nil" {
        return samples;
    }
    while let Ok((labels, rest)) = parse_series_labels(text.trim_start()) {
        let rest = rest.trim_start();
        let end = rest.find(", ").unwrap_or(rest.len());
        let value = sextant_rules::series_notation::parse_number(&rest[..end]).unwrap_or(f64::NAN);
        samples.push((labels, value));
        text = rest.get(end + 2..).unwrap_or("");
        if text.is_empty() {
            break;
        }
    }
    samples
}

/// Samples as a test file writes them, one per line.
fn show(samples: &[(Labels, f64)]) -> String {
    if samples.is_empty() {
        return " nothing".into();
    }
    samples
        .iter()
        .map(|(l, v)| format!("\n    {l} {}", readable(*v)))
        .collect()
}

/// A float the way a person writes it in a test file: exponents only for huge and tiny values.
fn readable(v: f64) -> String {
    if v.is_finite() && v != 0.0 && (v.abs() >= 1e21 || v.abs() < 1e-6) {
        format!("{v:e}")
    } else {
        format_go_float(v)
    }
}
