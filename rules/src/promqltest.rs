//! Runs PromQL test files in the format of Prometheus's engine tests (`promql/promqltest`):
//! `load <step>` with series lines, `clear`, `eval instant at <time> <expr>` and
//! `eval range from <start> to <end> step <step> <expr>` with expected results, the
//! `expect fail`/`expect ordered`/`expect fail msg:`/`expect fail regex:` lines, and Prometheus
//! 2.x's spellings `eval_fail`/`eval_ordered`. Results compare as Prometheus's do: values
//! within a relative 1e-6 (NaN equals NaN), every expected series present and nothing else.
//!
//! Evaluations that need what the engine does not implement — native histograms
//! (`load_with_nhcb`, `{{...}}` samples) and functions outside its list — are skipped and
//! counted, never passed.

use std::fmt::Write as _;

use crate::labels::Labels;
use crate::promql::value::{is_stale_marker, Value};
use crate::promql::{self, EvalError, EvalOptions, MemoryStorage};
use crate::series_notation::{parse_duration, parse_number, parse_series, SeriesDescription};

/// What running one file found.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// One entry per failing eval (or malformed command): line, query, expected and got.
    pub failures: Vec<String>,
}

/// What an eval expects.
#[derive(Debug)]
pub enum Expectation {
    /// The listed results (none listed: an empty result).
    Results,
    /// An error, optionally with this exact message or one matching this regex.
    Fail {
        message: Option<String>,
        regex: Option<regex::Regex>,
    },
}

/// One `eval` command.
#[derive(Debug)]
pub struct EvalCase {
    pub line: usize,
    pub query: String,
    /// Instant evals have `start == end` and `step == 0`; times in milliseconds.
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub ordered: bool,
    pub expectation: Expectation,
    pub expected_scalar: Option<f64>,
    pub expected_string: Option<String>,
    /// Expected series: one value for an instant eval, one per step for a range eval.
    pub expected: Vec<SeriesDescription>,
}

/// A command of a test file.
#[derive(Debug)]
pub enum Command {
    /// `load <step>`: samples at `k * step` for the k-th value of each series.
    Load {
        step: i64,
        series: Vec<SeriesDescription>,
    },
    Clear,
    Eval(EvalCase),
    /// Needs what the engine does not implement (native histograms...).
    Skip,
}

/// Parses a test file into its commands, each with its line number; a malformed command is
/// an `Err` with the reason.
pub fn parse(text: &str) -> Vec<(usize, Result<Command, String>)> {
    let mut commands = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let number = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The command's block: the indented lines that follow.
        let block_start = i;
        while i < lines.len() && !lines[i].trim().is_empty() && starts_indented(lines[i]) {
            i += 1;
        }
        let block: Vec<(usize, &str)> = (block_start..i)
            .map(|j| (j + 1, lines[j].trim()))
            .filter(|(_, l)| !l.starts_with('#'))
            .collect();
        let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let parsed = match command {
            "load" => parse_load(rest.trim(), &block),
            "load_with_nhcb" => Ok(Command::Skip),
            "clear" => Ok(Command::Clear),
            "eval" | "eval_fail" | "eval_ordered" | "eval_warn" | "eval_info" => {
                parse_eval(command, rest.trim(), number, &block)
                    .map(|e| e.map_or(Command::Skip, Command::Eval))
            }
            other => Err(format!("unknown command {other:?}")),
        };
        commands.push((number, parsed.map_err(|e| format!("{line}\n  {e}"))));
    }
    commands
}

/// Runs every command of `text` in order against a fresh store.
pub fn run(text: &str) -> Report {
    let mut report = Report::default();
    let mut storage = MemoryStorage::new();
    for (number, command) in parse(text) {
        match command {
            Ok(Command::Load { step, series }) => {
                for s in series {
                    for (k, value) in s.values.iter().enumerate() {
                        if let Some(v) = value {
                            storage.append(&s.labels, k as i64 * step, *v);
                        }
                    }
                }
            }
            Ok(Command::Clear) => storage.clear(),
            Ok(Command::Eval(eval)) => run_eval(&storage, &eval, &mut report),
            Ok(Command::Skip) => report.skipped += 1,
            Err(e) => {
                report.failed += 1;
                report.failures.push(format!("line {number}: {e}"));
            }
        }
    }
    report
}

fn starts_indented(line: &str) -> bool {
    line.starts_with([' ', '\t'])
}

fn parse_load(step: &str, block: &[(usize, &str)]) -> Result<Command, String> {
    let step = parse_duration(step)?;
    let mut series = Vec::with_capacity(block.len());
    for (number, line) in block {
        if line.contains("{{") {
            return Ok(Command::Skip); // native histogram samples
        }
        series.push(parse_series(line).map_err(|e| format!("line {number}: {e}"))?);
    }
    Ok(Command::Load { step, series })
}

/// Parses an eval command; `None` when it needs a feature outside the engine (skipped).
fn parse_eval(
    command: &str,
    rest: &str,
    line: usize,
    block: &[(usize, &str)],
) -> Result<Option<EvalCase>, String> {
    let (start, end, step, query) = if let Some(after) = rest.strip_prefix("instant at ") {
        let (time, query) = after
            .trim_start()
            .split_once(char::is_whitespace)
            .ok_or("missing query")?;
        let t = parse_time(time)?;
        (t, t, 0, query.trim())
    } else if let Some(after) = rest.strip_prefix("range from ") {
        let words: Vec<&str> = after.splitn(6, char::is_whitespace).collect();
        if words.len() < 6 || words[1] != "to" || words[3] != "step" {
            return Err(format!("malformed range eval: {rest:?}"));
        }
        (
            parse_time(words[0])?,
            parse_time(words[2])?,
            parse_duration(words[4])?,
            words[5].trim(),
        )
    } else {
        return Err(format!("malformed eval: {rest:?}"));
    };
    let mut eval = EvalCase {
        line,
        query: query.to_string(),
        start,
        end,
        step,
        ordered: command == "eval_ordered",
        expectation: if command == "eval_fail" {
            Expectation::Fail {
                message: None,
                regex: None,
            }
        } else {
            Expectation::Results
        },
        expected_scalar: None,
        expected_string: None,
        expected: Vec::new(),
    };
    for (number, text) in block {
        if let Some(expect) = text.strip_prefix("expect ") {
            let expect = expect.trim();
            if expect == "ordered" {
                eval.ordered = true;
            } else if expect == "fail" {
                eval.expectation = Expectation::Fail {
                    message: None,
                    regex: None,
                };
            } else if let Some(message) = expect.strip_prefix("fail msg:") {
                eval.expectation = Expectation::Fail {
                    message: Some(message.trim().to_string()),
                    regex: None,
                };
            } else if let Some(pattern) = expect.strip_prefix("fail regex:") {
                let regex =
                    regex::Regex::new(pattern.trim()).map_err(|e| format!("line {number}: {e}"))?;
                eval.expectation = Expectation::Fail {
                    message: None,
                    regex: Some(regex),
                };
            } else if expect.starts_with("warn")
                || expect.starts_with("no_warn")
                || expect.starts_with("info")
                || expect.starts_with("no_info")
            {
                // Annotations: the engine emits none; results are still compared.
            } else if expect.starts_with("range vector") || expect.starts_with("string") {
                return Ok(None);
            } else {
                return Err(format!("line {number}: unknown expectation {text:?}"));
            }
            continue;
        }
        if text.contains("{{") {
            return Ok(None); // a native histogram result
        }
        if text.starts_with('"') {
            eval.expected_string = Some(crate::series_notation::parse_quoted(text)?.0);
            continue;
        }
        if let Ok(v) = parse_number(text) {
            eval.expected_scalar = Some(v);
            continue;
        }
        let series = parse_series(text).map_err(|e| format!("line {number}: {e}"))?;
        if step == 0 && series.values.len() != 1 {
            return Ok(None); // a range vector expected from an instant query
        }
        eval.expected.push(series);
    }
    Ok(Some(eval))
}

fn parse_time(text: &str) -> Result<i64, String> {
    parse_duration(text).or_else(|_| {
        text.parse::<f64>()
            .map(|s| (s * 1000.0).round() as i64)
            .map_err(|_| format!("bad time {text:?}"))
    })
}

fn run_eval(storage: &MemoryStorage, eval: &EvalCase, report: &mut Report) {
    let outcome = promql::parse(&eval.query)
        .map_err(EvalError::Query)
        .and_then(|expr| {
            let options = EvalOptions::default();
            if eval.step == 0 {
                promql::instant_query(storage, &expr, eval.start, &options)
            } else {
                promql::range_query(storage, &expr, eval.start, eval.end, eval.step, &options)
                    .map(Value::Matrix)
            }
        });
    let verdict = match (&eval.expectation, outcome) {
        (_, Err(EvalError::Unsupported(_))) => {
            report.skipped += 1;
            return;
        }
        (Expectation::Fail { message, regex }, Err(error)) => {
            let text = error.to_string();
            match (message, regex) {
                (Some(m), _) if *m != text => Err(format!("expected error {m:?}, got {text:?}")),
                (_, Some(r)) if !r.is_match(&text) => {
                    Err(format!("expected error matching {r}, got {text:?}"))
                }
                _ => Ok(()),
            }
        }
        (Expectation::Fail { .. }, Ok(value)) => {
            Err(format!("expected an error, got {}", show_value(&value)))
        }
        (Expectation::Results, Err(error)) => Err(format!("unexpected error: {error}")),
        (Expectation::Results, Ok(value)) => compare(eval, &value),
    };
    match verdict {
        Ok(()) => report.passed += 1,
        Err(diff) => {
            report.failed += 1;
            report
                .failures
                .push(format!("line {}: eval {}\n{diff}", eval.line, eval.query));
        }
    }
}

/// Prometheus's `almostEqual`: NaN equals NaN, else relative difference under 1e-6.
pub fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 1e-6;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()) < EPSILON
}

fn compare(eval: &EvalCase, value: &Value) -> Result<(), String> {
    match value {
        Value::Scalar(v) => match eval.expected_scalar {
            Some(expected) if almost_equal(expected, *v) => Ok(()),
            Some(expected) => Err(format!("  expected scalar {expected}\n  got scalar {v}")),
            None => Err(format!(
                "  expected {}\n  got scalar {v}",
                show_expected(eval)
            )),
        },
        Value::String(s) => match &eval.expected_string {
            Some(expected) if expected == s => Ok(()),
            _ => Err(format!(
                "  expected {}\n  got string {s:?}",
                show_expected(eval)
            )),
        },
        Value::Vector(samples) => {
            if eval.expected_scalar.is_some() || eval.expected_string.is_some() {
                return Err(format!(
                    "  expected {}\n  got {}",
                    show_expected(eval),
                    show_value(value)
                ));
            }
            let got: Vec<(Labels, Vec<Option<f64>>)> = samples
                .iter()
                .map(|s| (s.labels.clone(), vec![Some(s.v)]))
                .collect();
            compare_series(eval, &got, value)
        }
        Value::Matrix(series) => {
            let got: Vec<(Labels, Vec<Option<f64>>)> = series
                .iter()
                .map(|s| {
                    let steps = if eval.step > 0 {
                        ((eval.end - eval.start) / eval.step + 1) as usize
                    } else {
                        0
                    };
                    let mut values = vec![None; steps];
                    for p in &s.points {
                        let k = ((p.t - eval.start) / eval.step.max(1)) as usize;
                        if k < values.len() {
                            values[k] = Some(p.v);
                        }
                    }
                    (s.labels.clone(), values)
                })
                .collect();
            compare_series(eval, &got, value)
        }
    }
}

fn compare_series(
    eval: &EvalCase,
    got: &[(Labels, Vec<Option<f64>>)],
    value: &Value,
) -> Result<(), String> {
    let mismatch = || {
        format!(
            "  expected {}\n  got {}",
            show_expected(eval),
            show_value(value)
        )
    };
    if got.len() != eval.expected.len() {
        return Err(mismatch());
    }
    for (position, (labels, values)) in got.iter().enumerate() {
        let Some(expected_position) = eval.expected.iter().position(|e| &e.labels == labels) else {
            return Err(mismatch());
        };
        if eval.ordered && expected_position != position {
            return Err(format!(
                "  out of order: {labels} at {position}, expected at {expected_position}\n{}",
                mismatch()
            ));
        }
        let expected = &eval.expected[expected_position].values;
        let mut expected_padded = expected.clone();
        expected_padded.resize(values.len().max(expected.len()), None);
        let mut values_padded = values.clone();
        values_padded.resize(expected_padded.len(), None);
        let same = expected_padded
            .iter()
            .zip(&values_padded)
            .all(|(e, g)| match (e, g) {
                (None, None) => true,
                (Some(e), Some(g)) => {
                    almost_equal(*e, *g) && is_stale_marker(*e) == is_stale_marker(*g)
                }
                _ => false,
            });
        if !same {
            return Err(mismatch());
        }
    }
    Ok(())
}

fn show_values(values: &[Option<f64>]) -> String {
    values
        .iter()
        .map(|v| v.map_or("_".to_string(), |v| v.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn show_expected(eval: &EvalCase) -> String {
    if let Some(v) = eval.expected_scalar {
        return format!("scalar {v}");
    }
    if let Some(s) = &eval.expected_string {
        return format!("string {s:?}");
    }
    if eval.expected.is_empty() {
        return "nothing".into();
    }
    let mut out = String::new();
    for series in &eval.expected {
        let _ = write!(
            out,
            "\n    {} {}",
            series.labels,
            show_values(&series.values)
        );
    }
    out
}

fn show_value(value: &Value) -> String {
    match value {
        Value::Scalar(v) => format!("scalar {v}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Vector(samples) if samples.is_empty() => "nothing".into(),
        Value::Vector(samples) => samples.iter().fold(String::new(), |mut out, s| {
            let _ = write!(out, "\n    {} {}", s.labels, s.v);
            out
        }),
        Value::Matrix(series) if series.is_empty() => "nothing".into(),
        Value::Matrix(series) => series.iter().fold(String::new(), |mut out, s| {
            let points: Vec<String> = s
                .points
                .iter()
                .map(|p| format!("{}@{}", p.v, p.t as f64 / 1000.0))
                .collect();
            let _ = write!(out, "\n    {} {}", s.labels, points.join(" "));
            out
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_right_and_a_wrong_expectation() {
        let report = run("load 1m\n  up{job=\"a\"} 1 2 3\n\neval instant at 2m up\n  up{job=\"a\"} 3\n\neval instant at 2m up\n  up{job=\"a\"} 4\n");
        assert_eq!(
            (report.passed, report.failed),
            (1, 1),
            "{:?}",
            report.failures
        );
        assert!(
            report.failures[0].contains("line 7"),
            "{}",
            report.failures[0]
        );
    }

    #[test]
    fn almost_equal_is_prometheus_tolerance() {
        assert!(almost_equal(1.0, 1.0 + 1e-9));
        assert!(!almost_equal(1.0, 1.0001));
        assert!(almost_equal(f64::NAN, f64::NAN));
        assert!(!almost_equal(0.0, 1e-300));
    }
}
