//! Alert templates: Go's `text/template` as Prometheus runs it for alert labels and
//! annotations, with `$labels`, `$value`, `$externalLabels`, `$externalURL` and `.` (the
//! alert's data), Prometheus's functions, and Go's printing. A template is parsed when the
//! rule file loads (a bad one refuses the file) and expanded each evaluation; an expansion
//! error becomes the text `<error expanding template: ...>`, as in Prometheus.

mod exec;
mod funcs;
mod parse;
mod value;

use std::collections::BTreeMap;

pub use value::QuerySample;

/// What a template sees.
pub struct Context<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    pub value: f64,
    /// Runs a PromQL query at the evaluation time (the `query` function).
    pub query: &'a dyn Fn(&str) -> Result<Vec<QuerySample>, String>,
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    source: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses `source`; the error says what is wrong.
    pub fn parse(source: &str) -> Result<Self, String> {
        let nodes = parse::parse(source)?;
        Ok(Self {
            source: source.to_string(),
            nodes,
        })
    }

    /// A template that expands to `text` itself, whatever it contains.
    pub fn literal(text: &str) -> Self {
        Self {
            source: text.to_string(),
            nodes: vec![parse::Node::Text(text.to_string())],
        }
    }

    /// The text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether expansion can only return the text itself (no actions).
    pub fn is_literal(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, parse::Node::Text(_)))
    }

    /// Expands the template, or returns why it failed.
    pub fn try_expand(&self, context: &Context<'_>) -> Result<String, String> {
        exec::execute(&self.nodes, context)
    }

    /// Expands the template as Prometheus does: a failure becomes its message in the text.
    pub fn expand(&self, context: &Context<'_>) -> String {
        self.try_expand(context)
            .unwrap_or_else(|e| format!("<error expanding template: {e}>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(source: &str, labels: &[(&str, &str)], value: f64) -> String {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let external = BTreeMap::from([("cluster".to_string(), "prod".to_string())]);
        let query = |q: &str| -> Result<Vec<QuerySample>, String> {
            Ok(vec![QuerySample {
                labels: BTreeMap::from([("q".to_string(), q.to_string())]),
                value: 42.0,
            }])
        };
        let context = Context {
            labels: &labels,
            external_labels: &external,
            external_url: "http://x/prom",
            value,
            query: &query,
        };
        Template::parse(source).unwrap().expand(&context)
    }

    #[test]
    fn the_templates_rule_authors_write() {
        assert_eq!(
            expand(
                "{{ $labels.instance }} is down",
                &[("instance", "a:1")],
                0.0
            ),
            "a:1 is down"
        );
        assert_eq!(
            expand("{{ .Labels.job }}/{{ .Value }}", &[("job", "api")], 0.5),
            "api/0.5"
        );
        assert_eq!(
            expand("{{ $value | humanizePercentage }}", &[], 0.1234),
            "12.34%"
        );
        assert_eq!(expand("{{ printf \"%.1f\" $value }}", &[], 2.25), "2.2");
        assert_eq!(
            expand("{{ $externalLabels.cluster | toUpper }}", &[], 0.0),
            "PROD"
        );
        assert_eq!(expand("{{ $labels.missing }}", &[], 0.0), "");
        assert_eq!(
            expand("{{ if gt $value 1.0 }}high{{ else }}low{{ end }}", &[], 2.0),
            "high"
        );
        assert!(expand("{{ if gt $value 1 }}x{{ end }}", &[], 2.0)
            .starts_with("<error expanding template"));
        assert_eq!(expand("a {{- \" b \" -}} c", &[], 0.0), "a b c");
        assert_eq!(
            expand(
                "{{ with query \"up\" }}{{ . | first | value }}{{ end }}",
                &[],
                0.0
            ),
            "42"
        );
        assert_eq!(
            expand(
                "{{ range query \"up\" }}{{ .Labels.q }}={{ .Value }};{{ end }}",
                &[],
                0.0
            ),
            "up=42;"
        );
        assert_eq!(
            expand("{{ $x := 3 }}{{ $x }}{{/* comment */}}", &[], 0.0),
            "3"
        );
        assert_eq!(
            expand(
                "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}",
                &[("instance", "h:9")],
                0.0
            ),
            "h"
        );
    }

    #[test]
    fn malformed_templates_fail_to_parse() {
        assert!(Template::parse("{{ $labels.x ").is_err());
        assert!(Template::parse("{{ nosuchfunc 1 }}").is_err());
        assert!(Template::parse("{{ if true }}x").is_err());
        assert!(Template::parse("{{ end }}").is_err());
    }
}
