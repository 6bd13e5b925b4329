//! Prometheus rule files: loading, and validation as precise as promtool's. Every problem of
//! every file is reported (file, group, rule, what is wrong); a set of files loads whole or
//! not at all, so a reload that fails keeps the rules that run.
//!
//! Beyond promtool, a file is refused when an expression is a range vector or a string (a rule
//! must give an instant vector or a scalar), when it uses a function or aggregation the engine
//! does not evaluate, and when two rules share a name and labels (their series would collide).

mod model;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use promql_parser::parser::value::ValueType;
use promql_parser::parser::Expr;

use crate::duration::parse_duration;
use crate::promql::support::check_supported;
use crate::template::Template;
use model::{GroupDoc, RuleDoc, RuleFileDoc};

/// A loaded group.
#[derive(Clone, Debug)]
pub struct RuleGroup {
    pub name: String,
    /// The file it came from (groups are identified by file and name).
    pub file: String,
    /// Its own evaluation interval, if it sets one.
    pub interval_ms: Option<i64>,
    /// Most series a rule may return (0: no limit).
    pub limit: usize,
    pub rules: Vec<Rule>,
}

/// A loaded rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The recorded series' name or the alert's name.
    pub name: String,
    pub expr: Expr,
    pub expr_text: String,
    /// Labels added to the output (templates for alerting rules; literal for recording).
    pub labels: Vec<(String, Template)>,
    pub kind: RuleKind,
}

#[derive(Clone, Debug)]
pub enum RuleKind {
    Recording,
    Alerting {
        for_ms: i64,
        keep_firing_for_ms: i64,
        annotations: Vec<(String, Template)>,
    },
}

impl Rule {
    pub fn is_alerting(&self) -> bool {
        matches!(self.kind, RuleKind::Alerting { .. })
    }
}

/// Loads every file matching `patterns` (globs; relative ones against `base`), in a stable
/// order: sorted paths, groups in file order. A pattern matching no file is not an error
/// (Prometheus's behaviour); a missing literal path is.
pub fn load_globs(patterns: &[String], base: &Path) -> Result<Vec<RuleGroup>, Vec<String>> {
    let mut paths = Vec::new();
    let mut errors = Vec::new();
    for pattern in patterns {
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            base.join(pattern)
        };
        let text = full.to_string_lossy().into_owned();
        match glob::glob(&text) {
            Ok(matches) => {
                let mut found: Vec<PathBuf> = matches.filter_map(Result::ok).collect();
                if found.is_empty() && !has_glob_chars(pattern) {
                    errors.push(format!("{text}: no such file"));
                }
                found.sort();
                paths.extend(found);
            }
            Err(e) => errors.push(format!("{pattern}: bad glob pattern: {e}")),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    paths.dedup();
    load_files(&paths)
}

fn has_glob_chars(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Loads the files at `paths`.
pub fn load_files(paths: &[PathBuf]) -> Result<Vec<RuleGroup>, Vec<String>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let name = path.to_string_lossy().into_owned();
        match std::fs::read_to_string(path) {
            Ok(text) => match parse_rule_file(&name, &text) {
                Ok(mut loaded) => groups.append(&mut loaded),
                Err(mut file_errors) => errors.append(&mut file_errors),
            },
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// Parses and validates one file's text; `file` names it in errors.
pub fn parse_rule_file(file: &str, text: &str) -> Result<Vec<RuleGroup>, Vec<String>> {
    let doc: RuleFileDoc = match serde_yaml_ng::from_str(text) {
        Ok(doc) => doc,
        Err(e) if text.trim().is_empty() => {
            let _ = e;
            RuleFileDoc { groups: Vec::new() }
        }
        Err(e) => return Err(vec![format!("{file}: {e}")]),
    };
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut group_names = HashSet::new();
    let mut identities: HashSet<(String, Vec<(String, String)>)> = HashSet::new();
    for (gi, group) in doc.groups.into_iter().enumerate() {
        let at = format!("{file}: group {:?}", group.name);
        if group.name.is_empty() {
            errors.push(format!(
                "{file}: group {}: groupname must not be empty",
                gi + 1
            ));
            continue;
        }
        if !group_names.insert(group.name.clone()) {
            errors.push(format!("{at}: groupname is repeated in the same file"));
            continue;
        }
        match load_group(file, group, &mut identities) {
            Ok(group) => groups.push(group),
            Err(mut group_errors) => {
                for e in group_errors.iter_mut() {
                    *e = format!("{at}, {e}");
                }
                errors.append(&mut group_errors);
            }
        }
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

fn load_group(
    file: &str,
    doc: GroupDoc,
    identities: &mut HashSet<(String, Vec<(String, String)>)>,
) -> Result<RuleGroup, Vec<String>> {
    let mut errors = Vec::new();
    let interval_ms = match doc.interval.as_deref().map(parse_duration).transpose() {
        Ok(Some(0)) => {
            errors.push("interval: must be greater than 0".to_string());
            None
        }
        Ok(interval) => interval,
        Err(e) => {
            errors.push(format!("interval: {e}"));
            None
        }
    };
    let mut rules = Vec::new();
    for (ri, rule) in doc.rules.into_iter().enumerate() {
        match load_rule(rule, &doc.labels) {
            Ok(rule) => {
                let identity = (
                    rule.name.clone(),
                    rule.labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.source().to_string()))
                        .collect(),
                );
                if !identities.insert(identity) {
                    errors.push(format!(
                        "rule {} ({} {:?}): a rule with this name and these labels is already defined",
                        ri + 1,
                        if rule.is_alerting() { "alert" } else { "record" },
                        rule.name
                    ));
                }
                rules.push(rule);
            }
            Err((name, e)) => errors.push(format!("rule {}{name}: {e}", ri + 1)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(RuleGroup {
        name: doc.name,
        file: file.to_string(),
        interval_ms,
        limit: usize::try_from(doc.limit.unwrap_or(0)).unwrap_or(usize::MAX),
        rules,
    })
}

/// Loads a rule; an error comes with the rule's name as ` (alert "X")` when it has one.
fn load_rule(
    doc: RuleDoc,
    group_labels: &BTreeMap<String, String>,
) -> Result<Rule, (String, String)> {
    let (name, recording) = match (&doc.record, &doc.alert) {
        (Some(record), None) => (record.clone(), true),
        (None, Some(alert)) => (alert.clone(), false),
        (Some(_), Some(_)) => {
            return Err((
                String::new(),
                "only one of 'record' and 'alert' must be set".into(),
            ))
        }
        (None, None) => {
            return Err((
                String::new(),
                "one of 'record' or 'alert' must be set".into(),
            ))
        }
    };
    let described = format!(" ({} {name:?})", if recording { "record" } else { "alert" });
    let fail = |message: String| (described.clone(), message);
    if name.is_empty() {
        return Err(fail(format!(
            "field '{}' must be set in rule",
            if recording { "record" } else { "alert" }
        )));
    }
    if recording && !is_valid_metric_name(&name) {
        return Err(fail(format!("invalid recording rule name: {name}")));
    }
    let expr_text = doc.expr.clone().unwrap_or_default();
    if expr_text.trim().is_empty() {
        return Err(fail("field 'expr' must be set in rule".into()));
    }
    let expr = crate::promql::parse(&expr_text)
        .map_err(|e| fail(format!("could not parse expression: {e}")))?;
    match expr.value_type() {
        ValueType::Vector | ValueType::Scalar => {}
        other => {
            return Err(fail(format!(
                "expression must be an instant vector or a scalar, not a {other}"
            )))
        }
    }
    check_supported(&expr).map_err(|e| fail(format!("could not evaluate expression: {e}")))?;
    if recording {
        if !doc.annotations.is_empty() {
            return Err(fail("invalid field 'annotations' in recording rule".into()));
        }
        if doc.for_.is_some() {
            return Err(fail("invalid field 'for' in recording rule".into()));
        }
        if doc.keep_firing_for.is_some() {
            return Err(fail(
                "invalid field 'keep_firing_for' in recording rule".into(),
            ));
        }
    }
    let mut all_labels = group_labels.clone();
    all_labels.extend(doc.labels);
    let mut labels = Vec::with_capacity(all_labels.len());
    for (label, value) in all_labels {
        if !crate::labels::is_valid_label_name(&label) {
            return Err(fail(format!("invalid label name: {label}")));
        }
        if recording && label == crate::labels::METRIC_NAME {
            return Err(fail("recording rule labels must not set __name__".into()));
        }
        if recording {
            // Prometheus does not expand recording rules' labels: the text is the value.
            labels.push((label, Template::literal(&value)));
        } else {
            let template = Template::parse(&value)
                .map_err(|e| fail(format!("label {label:?}: template: {e}")))?;
            labels.push((label, template));
        }
    }
    let kind = if recording {
        RuleKind::Recording
    } else {
        let for_ms = duration_field("for", doc.for_.as_deref()).map_err(fail)?;
        let keep_firing_for_ms =
            duration_field("keep_firing_for", doc.keep_firing_for.as_deref()).map_err(fail)?;
        let mut annotations = Vec::with_capacity(doc.annotations.len());
        for (key, value) in doc.annotations {
            let template = Template::parse(&value)
                .map_err(|e| fail(format!("annotation {key:?}: template: {e}")))?;
            annotations.push((key, template));
        }
        RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            annotations,
        }
    };
    Ok(Rule {
        name,
        expr,
        expr_text,
        labels,
        kind,
    })
}

fn duration_field(name: &str, text: Option<&str>) -> Result<i64, String> {
    match text {
        None => Ok(0),
        Some(text) => parse_duration(text).map_err(|e| format!("{name}: {e}")),
    }
}

/// Prometheus's metric-name rule: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests;
