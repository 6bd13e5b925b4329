//! `sextant test-rules`: runs promtool's rule unit tests with the same verdicts as
//! `promtool test rules` (Prometheus 2.42). Per test group, as promtool does: the input series
//! are loaded up to each evaluation time, every group is evaluated every
//! `evaluation_interval` from 0 to the latest `eval_time` (groups' own intervals are ignored,
//! `group_eval_order` orders them), an alert test compares the firing alerts of the
//! evaluation at or just before its time, and the PromQL tests query at their time once all
//! evaluations ran. Labels, annotations and values must be exactly equal.

mod model;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::duration::{format_duration, parse_duration};
use crate::evaluator::{GroupState, Settings};
use crate::labels::Labels;
use crate::promql::value::Value;
use crate::promql::{instant_query, MemoryStorage};
use crate::rule_files::load_globs;
use crate::series_notation::{parse_series_labels, parse_values};
use model::{TestGroup, UnitTestFile};

/// Runs the unit tests of one file; `Ok(())` when all pass, else the failures as promtool
/// words them.
pub fn run_file(path: &Path) -> Result<(), Vec<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    let file: UnitTestFile =
        serde_yaml_ng::from_str(&text).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    let evaluation_interval = match file.evaluation_interval.as_deref() {
        None => 60_000,
        Some(text) => {
            parse_duration(text).map_err(|e| vec![format!("evaluation_interval: {e}")])?
        }
    };
    if evaluation_interval <= 0 {
        return Err(vec!["evaluation_interval must be greater than 0".into()]);
    }
    let mut order = BTreeMap::new();
    for (i, name) in file.group_eval_order.iter().enumerate() {
        if order.insert(name.clone(), i).is_some() {
            return Err(vec![format!(
                "group name repeated in evaluation order: {name}"
            )]);
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut errors = Vec::new();
    for group in &file.tests {
        errors.extend(run_group(
            group,
            &file.rule_files,
            base,
            evaluation_interval,
            &order,
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What `promtool test rules` prints for one file, and whether it passed.
pub fn report(path: &Path) -> (String, bool) {
    let mut out = format!("Unit Testing:  {}\n", path.display());
    match run_file(path) {
        Ok(()) => {
            out.push_str("  SUCCESS\n");
            (out, true)
        }
        Err(errors) => {
            out.push_str("  FAILED:\n");
            for e in errors {
                let _ = writeln!(out, "{e}");
            }
            (out, false)
        }
    }
}

fn run_group(
    test: &TestGroup,
    rule_files: &[String],
    base: &Path,
    evaluation_interval: i64,
    order: &BTreeMap<String, usize>,
) -> Vec<String> {
    let mut errors = Vec::new();
    let interval = match test.interval.as_deref().map(parse_duration).transpose() {
        Ok(interval) => interval.unwrap_or(evaluation_interval),
        Err(e) => return vec![format!("    interval: {e}")],
    };
    let mut groups: Vec<GroupState> = match load_globs(rule_files, base) {
        Ok(groups) => groups.into_iter().map(GroupState::new).collect(),
        Err(load_errors) => {
            return load_errors
                .into_iter()
                .map(|e| format!("    {e}"))
                .collect()
        }
    };
    if !order.is_empty() {
        groups.sort_by_key(|g| order.get(&g.name).copied().unwrap_or(usize::MAX));
    }

    // The input, as (time, labels, value), loaded as time advances.
    let mut input = Vec::new();
    for series in &test.input_series {
        let labels = match parse_series_labels(series.series.trim()) {
            Ok((labels, rest)) if rest.trim().is_empty() => labels,
            Ok(_) => {
                return vec![format!(
                    "    series {:?}: unexpected text after the labels",
                    series.series
                )]
            }
            Err(e) => return vec![format!("    series {:?}: {e}", series.series)],
        };
        let values = match parse_values(&series.values) {
            Ok(values) => values,
            Err(e) => return vec![format!("    series {:?}: {e}", series.series)],
        };
        for (k, value) in values.into_iter().enumerate() {
            if let Some(v) = value {
                input.push((k as i64 * interval, labels.clone(), v));
            }
        }
    }
    input.sort_by_key(|(t, _, _)| *t);

    let mut alert_tests = Vec::new();
    for test in &test.alert_rule_test {
        match parse_duration(&test.eval_time) {
            Ok(t) => alert_tests.push((t, test)),
            Err(e) => errors.push(format!("    eval_time {:?}: {e}", test.eval_time)),
        }
    }
    alert_tests.sort_by_key(|(t, _)| *t);
    let mut expr_tests = Vec::new();
    for test in &test.promql_expr_test {
        match parse_duration(&test.eval_time) {
            Ok(t) => expr_tests.push((t, test)),
            Err(e) => errors.push(format!("    eval_time {:?}: {e}", test.eval_time)),
        }
    }
    if !errors.is_empty() {
        return errors;
    }
    let max_time = alert_tests
        .iter()
        .map(|(t, _)| *t)
        .chain(expr_tests.iter().map(|(t, _)| *t))
        .max()
        .unwrap_or(0);
    let settings = Settings {
        external_labels: test.external_labels.clone(),
        external_url: test.external_url.clone(),
        options: crate::promql::EvalOptions {
            default_subquery_step_ms: evaluation_interval,
            ..Default::default()
        },
    };
    let name = if test.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", test.name)
    };

    let mut store = MemoryStorage::new();
    let mut loaded = 0;
    let mut next_alert_test = 0;
    let mut ts = 0;
    while ts <= max_time {
        while loaded < input.len() && input[loaded].0 <= ts {
            let (t, labels, v) = &input[loaded];
            store.append(labels, *t, *v);
            loaded += 1;
        }
        let mut eval_errors = Vec::new();
        for group in &mut groups {
            for (rule, error) in group.evaluate(&mut store, ts, &settings).errors {
                eval_errors.push(format!(
                    "    rule: {rule}, time: {}, err: {error}",
                    format_go_duration(ts)
                ));
            }
        }
        if !eval_errors.is_empty() {
            errors.extend(eval_errors);
            return errors;
        }
        while next_alert_test < alert_tests.len()
            && ts <= alert_tests[next_alert_test].0
            && alert_tests[next_alert_test].0 < ts + evaluation_interval
        {
            let (t, test) = alert_tests[next_alert_test];
            let mut got: Vec<(Labels, BTreeMap<String, String>)> = groups
                .iter()
                .flat_map(|g| &g.rules)
                .filter(|r| r.rule.is_alerting() && r.rule.name == test.alertname)
                .flat_map(|r| r.alerts.firing())
                .map(|a| (a.labels.clone(), a.annotations.clone()))
                .collect();
            let mut expected: Vec<(Labels, BTreeMap<String, String>)> = test
                .exp_alerts
                .iter()
                .map(|a| {
                    let mut labels = Labels::from_pairs(a.exp_labels.clone());
                    labels.set("alertname", test.alertname.as_str());
                    (labels, a.exp_annotations.clone())
                })
                .collect();
            got.sort();
            expected.sort();
            if got != expected {
                errors.push(format!(
                    "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                    test.alertname,
                    format_duration(t),
                    indent(&show_alerts(&expected), "            "),
                    indent(&show_alerts(&got), "            ")
                ));
            }
            next_alert_test += 1;
        }
        ts += evaluation_interval;
    }

    for (t, test) in expr_tests {
        let at = format!("    expr: {:?}, time: {}", test.expr, format_duration(t));
        let result = crate::promql::parse(&test.expr).and_then(|expr| {
            instant_query(&store, &expr, t, &settings.options).map_err(|e| e.to_string())
        });
        let mut got: Vec<(Labels, f64)> = match result {
            Ok(Value::Vector(samples)) => samples.into_iter().map(|s| (s.labels, s.v)).collect(),
            Ok(Value::Scalar(v)) => vec![(Labels::new(), v)],
            Ok(_) => {
                errors.push(format!("{at}, err: rule result is not a vector or scalar"));
                continue;
            }
            Err(e) => {
                errors.push(format!("{at}, err: {e}"));
                continue;
            }
        };
        let mut expected = Vec::with_capacity(test.exp_samples.len());
        let mut bad_labels = None;
        for sample in &test.exp_samples {
            match parse_series_labels(sample.labels.trim()) {
                Ok((labels, rest)) if rest.trim().is_empty() => {
                    expected.push((labels, sample.value))
                }
                Ok(_) | Err(_) => {
                    bad_labels = Some(format!(
                        "{at}, err: labels {:?}: bad label set",
                        sample.labels
                    ))
                }
            }
        }
        if let Some(e) = bad_labels {
            errors.push(e);
            continue;
        }
        got.sort_by(|a, b| a.0.cmp(&b.0));
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        // Exact equality, as promtool's reflect.DeepEqual (so NaN never equals NaN).
        let equal = got.len() == expected.len()
            && got
                .iter()
                .zip(&expected)
                .all(|(g, e)| g.0 == e.0 && g.1 == e.1);
        if !equal {
            errors.push(format!(
                "{at},\n        exp: {}\n        got: {}",
                show_samples(&expected),
                show_samples(&got)
            ));
        }
    }
    errors
}

fn show_alerts(alerts: &[(Labels, BTreeMap<String, String>)]) -> String {
    if alerts.is_empty() {
        return "[]".into();
    }
    let mut out = String::from("[");
    for (i, (labels, annotations)) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "\n{i}:{}",
            indent(
                &format!(
                    "\nLabels:{}\nAnnotations:{}",
                    labels.prometheus_string(),
                    show_map(annotations)
                ),
                "  "
            )
        );
    }
    out.push_str("\n]");
    out
}

fn show_map(map: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn show_samples(samples: &[(Labels, f64)]) -> String {
    if samples.is_empty() {
        return "nil".into();
    }
    samples
        .iter()
        .map(|(l, v)| format!("{} {}", l.prometheus_string(), format_upper_e(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`.
fn format_upper_e(v: f64) -> String {
    let text = sextant_pipeline::gofmt::format_g(v, -1);
    if v.is_nan() || v.is_infinite() {
        return text;
    }
    let scientific = format!("{v:e}");
    let (mantissa, exp) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!(
        "{mantissa}E{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// Go's `time.Duration.String()` of milliseconds (`1m0s`, `1h30m0s`, `500ms`), which promtool
/// prints for rule-evaluation times.
fn format_go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, minutes, seconds, millis) =
        (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let seconds = if millis == 0 {
        format!("{seconds}s")
    } else {
        format!(
            "{seconds}.{}s",
            format!("{millis:03}").trim_end_matches('0')
        )
    };
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

fn indent(text: &str, prefix: &str) -> String {
    text.replace('\n', &format!("\n{prefix}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_print_as_go_s_upper_e() {
        assert_eq!(
            super::format_upper_e(0.016666666666666666),
            "1.6666666666666666E-02"
        );
        assert_eq!(super::format_upper_e(60.0), "6E+01");
        assert_eq!(super::format_upper_e(0.0), "0E+00");
    }

    #[test]
    fn evaluation_times_print_as_go_durations() {
        assert_eq!(super::format_go_duration(0), "0s");
        assert_eq!(super::format_go_duration(60_000), "1m0s");
        assert_eq!(super::format_go_duration(5_430_500), "1h30m30.5s");
        assert_eq!(super::format_go_duration(250), "250ms");
    }
}
