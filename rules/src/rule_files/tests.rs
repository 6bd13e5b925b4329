use super::*;

fn errors_of(text: &str) -> Vec<String> {
    parse_rule_file("r.yml", text).err().unwrap_or_default()
}

#[test]
fn a_valid_file_loads_with_its_groups_rules_and_templates() {
    let groups = parse_rule_file(
        "r.yml",
        r#"
groups:
  - name: api
    interval: 30s
    limit: 10
    rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
        labels: { team: "{{ not a template }}" }
      - alert: HighErrorRate
        expr: job:http_requests:rate5m > 1
        for: 5m
        keep_firing_for: 1m
        labels: { severity: 1 }
        annotations:
          summary: "{{ $labels.job }} errors at {{ $value | humanize }}"
"#,
    )
    .unwrap();
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    assert_eq!(
        (group.name.as_str(), group.interval_ms, group.limit),
        ("api", Some(30_000), 10)
    );
    assert_eq!(group.rules[0].labels[0].1.source(), "{{ not a template }}");
    assert!(!group.rules[0].is_alerting());
    match &group.rules[1].kind {
        RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            annotations,
        } => {
            assert_eq!(
                (*for_ms, *keep_firing_for_ms, annotations.len()),
                (300_000, 60_000, 1)
            );
        }
        RuleKind::Recording => panic!("an alerting rule"),
    }
    assert_eq!(group.rules[1].labels[0].1.source(), "1");
}

#[test]
fn every_problem_is_reported_with_file_group_and_rule() {
    let errors = errors_of(
        r#"
groups:
  - name: g
    rules:
      - alert: A
        expr: rate(x)
      - record: "bad name"
        expr: x
      - record: r
        alert: a
        expr: x
      - alert: B
        expr: x[5m]
      - alert: C
        expr: x
        annotations: { s: "{{ $labels.job " }
      - record: r2
        expr: x
        for: 5m
      - alert: D
        expr: holt_winters(x[5m], 0.5, 0.5)
      - alert: E
        expr: x
        labels: { "bad-label": v }
      - alert: F
  - name: g
    rules: []
"#,
    );
    let expected = [
        r#"r.yml: group "g", rule 1 (alert "A"): could not parse expression: "#,
        r#"r.yml: group "g", rule 2 (record "bad name"): invalid recording rule name: bad name"#,
        r#"r.yml: group "g", rule 3: only one of 'record' and 'alert' must be set"#,
        r#"r.yml: group "g", rule 4 (alert "B"): expression must be an instant vector or a scalar, not a matrix"#,
        r#"r.yml: group "g", rule 5 (alert "C"): annotation "s": template: unclosed action"#,
        r#"r.yml: group "g", rule 6 (record "r2"): invalid field 'for' in recording rule"#,
        r#"r.yml: group "g", rule 7 (alert "D"): could not evaluate expression: function holt_winters is not supported"#,
        r#"r.yml: group "g", rule 8 (alert "E"): invalid label name: bad-label"#,
        r#"r.yml: group "g", rule 9 (alert "F"): field 'expr' must be set in rule"#,
        r#"r.yml: group "g": groupname is repeated in the same file"#,
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, expected) in errors.iter().zip(expected) {
        assert!(
            error.starts_with(expected),
            "{error}\nshould start with\n{expected}"
        );
    }
}

#[test]
fn unknown_keys_and_yaml_errors_name_the_place() {
    let errors = errors_of(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x\n        fore: 5m\n",
    );
    assert!(
        errors[0].contains("unknown field `fore`") && errors[0].contains("line 6"),
        "{errors:?}"
    );
    let errors = errors_of("groups: [ {name: g, rules: [ ] ");
    assert!(errors[0].starts_with("r.yml: "), "{errors:?}");
}

#[test]
fn duplicate_rules_are_refused_rules_sharing_only_a_name_are_not() {
    let text = |second_severity: &str| {
        format!(
            "groups:\n  - name: g\n    rules:\n      - alert: Disk\n        expr: x > 90\n        labels: {{severity: critical}}\n      - alert: Disk\n        expr: x > 80\n        labels: {{severity: {second_severity}}}\n"
        )
    };
    assert!(parse_rule_file("r.yml", &text("warning")).is_ok());
    let errors = errors_of(&text("critical"));
    assert!(
        errors[0].contains(
            "rule 2 (alert \"Disk\"): a rule with this name and these labels is already defined"
        ),
        "{errors:?}"
    );
}

#[test]
fn globs_load_in_sorted_order_and_a_missing_literal_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "groups: [{name: b, rules: [{record: b, expr: '1'}]}]",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.yml"),
        "groups: [{name: a, rules: [{record: a, expr: '1'}]}]",
    )
    .unwrap();
    let groups = load_globs(&["*.yml".to_string()], dir.path()).unwrap();
    assert_eq!(
        groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let errors = load_globs(&["missing.yml".to_string()], dir.path()).unwrap_err();
    assert!(
        errors[0].ends_with("missing.yml: no such file"),
        "{errors:?}"
    );
    assert!(load_globs(&["none-*.yml".to_string()], dir.path())
        .unwrap()
        .is_empty());
}
