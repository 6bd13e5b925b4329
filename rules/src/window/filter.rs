//! Which series the window store keeps: those some rule's selector can match. Selectors are
//! indexed by the metric name they require (most name one); the few that do not are tried on
//! every new series. A series no selector matches is not stored at all.

use std::collections::HashMap;

use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::Expr;

use crate::labels::METRIC_NAME;

/// A series' labels as the filter reads them (borrowed, so an arriving sample needs no
/// allocation to be tested).
pub trait LabelView {
    /// The value of `name`, or "".
    fn value(&self, name: &str) -> &str;
}

impl LabelView for crate::labels::Labels {
    fn value(&self, name: &str) -> &str {
        self.get(name)
    }
}

/// The selectors of a set of rules.
#[derive(Debug, Default)]
pub struct SelectorFilter {
    by_name: HashMap<String, Vec<Vec<Matcher>>>,
    general: Vec<Vec<Matcher>>,
}

impl SelectorFilter {
    /// The filter for every selector in `exprs`.
    pub fn new<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Self {
        let mut filter = Self::default();
        for expr in exprs {
            filter.add_expr(expr);
        }
        filter
    }

    /// A filter that keeps everything (tests, and a store without rules).
    pub fn everything() -> Self {
        Self {
            by_name: HashMap::new(),
            general: vec![Vec::new()],
        }
    }

    fn add_expr(&mut self, expr: &Expr) {
        match expr {
            Expr::VectorSelector(vs) => self.add_selector(vs.name.as_deref(), &vs.matchers),
            Expr::MatrixSelector(ms) => self.add_selector(ms.vs.name.as_deref(), &ms.vs.matchers),
            Expr::Aggregate(a) => {
                self.add_expr(&a.expr);
                if let Some(p) = &a.param {
                    self.add_expr(p);
                }
            }
            Expr::Unary(u) => self.add_expr(&u.expr),
            Expr::Binary(b) => {
                self.add_expr(&b.lhs);
                self.add_expr(&b.rhs);
            }
            Expr::Paren(p) => self.add_expr(&p.expr),
            Expr::Subquery(s) => self.add_expr(&s.expr),
            Expr::Call(c) => c.args.args.iter().for_each(|a| self.add_expr(a)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    fn add_selector(&mut self, name: Option<&str>, matchers: &Matchers) {
        let alternatives: Vec<Vec<Matcher>> = if matchers.or_matchers.is_empty() {
            vec![matchers.matchers.clone()]
        } else {
            matchers.or_matchers.clone()
        };
        for mut alternative in alternatives {
            let name = name.map(str::to_string).or_else(|| {
                alternative
                    .iter()
                    .position(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal)
                    .map(|i| alternative.remove(i).value)
            });
            match name {
                Some(name) => self.by_name.entry(name).or_default().push(alternative),
                None => self.general.push(alternative),
            }
        }
    }

    /// The metric names the selectors require, and whether some selector names none (matches
    /// by other labels only). What a check of rules and dashboards against the metrics really
    /// exported reads.
    pub fn metric_names(&self) -> (Vec<&str>, bool) {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        (names, !self.general.is_empty())
    }

    /// Whether some selector matches the series.
    pub fn admits(&self, labels: &impl LabelView) -> bool {
        let all =
            |matchers: &Vec<Matcher>| matchers.iter().all(|m| m.is_match(labels.value(&m.name)));
        if let Some(selectors) = self.by_name.get(labels.value(METRIC_NAME)) {
            if selectors.iter().any(all) {
                return true;
            }
        }
        self.general.iter().any(all)
    }

    /// Whether the filter can admit any series named `name` (a cheap first test).
    pub fn may_admit_name(&self, name: &str) -> bool {
        !self.general.is_empty() || self.by_name.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;

    #[test]
    fn only_series_a_selector_can_match_pass() {
        let exprs: Vec<Expr> = [
            r#"sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))"#,
            r#"up{job="api"} == 0"#,
            r#"{__name__="node_load1", instance!=""} > 4"#,
            r#"absent({job="batch"})"#,
        ]
        .iter()
        .map(|q| crate::promql::parse(q).unwrap())
        .collect();
        let filter = SelectorFilter::new(&exprs);
        let admits =
            |pairs: &[(&str, &str)]| filter.admits(&Labels::from_pairs(pairs.iter().copied()));
        assert!(admits(&[
            ("__name__", "http_requests_total"),
            ("code", "200")
        ]));
        assert!(admits(&[("__name__", "up"), ("job", "api")]));
        assert!(!admits(&[("__name__", "up"), ("job", "web")]));
        assert!(admits(&[("__name__", "node_load1"), ("instance", "a")]));
        assert!(!admits(&[("__name__", "node_load1")]));
        assert!(admits(&[("__name__", "anything"), ("job", "batch")]));
        assert!(!admits(&[("__name__", "go_goroutines"), ("job", "api")]));
        assert_eq!(
            filter.metric_names(),
            (vec!["http_requests_total", "node_load1", "up"], true)
        );
        assert!(
            filter.may_admit_name("go_goroutines"),
            "a selector without a name is tried on every series"
        );
    }
}
