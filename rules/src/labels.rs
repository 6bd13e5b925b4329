//! A series' label set: name/value pairs sorted by name, no empty values (an empty value is the
//! same as an absent label, as in Prometheus). Rendering follows Prometheus's
//! `name{label="value", ...}`, so errors and test diffs read like promtool's.

use std::fmt;
use std::sync::Arc;

/// The metric-name label.
pub const METRIC_NAME: &str = "__name__";

/// Prometheus's label-name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One label. Names and values are shared, not copied: evaluation clones label sets for
/// every selected series, and a clone costs reference counts instead of allocations.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub name: Arc<str>,
    pub value: Arc<str>,
}

/// A sorted label set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// The empty set.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// A set from pairs in any order; a later duplicate name wins, empty values are dropped.
    pub fn from_pairs<N: Into<Arc<str>>, V: Into<Arc<str>>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut labels = Self::new();
        for (name, value) in pairs {
            labels.set(name.into(), value.into());
        }
        labels
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|label| (*label.name).cmp(name))
    }

    /// The value of `name`, or "" when the label is absent (Prometheus's `Get`).
    pub fn get(&self, name: &str) -> &str {
        match self.position(name) {
            Ok(i) => &self.0[i].value,
            Err(_) => "",
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// The metric name, or "" without one.
    pub fn metric_name(&self) -> &str {
        self.get(METRIC_NAME)
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: impl Into<Arc<str>>, value: impl Into<Arc<str>>) {
        let (name, value): (Arc<str>, Arc<str>) = (name.into(), value.into());
        match (self.position(&name), value.is_empty()) {
            (Ok(i), true) => {
                self.0.remove(i);
            }
            (Ok(i), false) => self.0[i].value = value,
            (Err(_), true) => {}
            (Err(i), false) => self.0.insert(i, Label { name, value }),
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.position(name) {
            self.0.remove(i);
        }
    }

    /// Without the metric name.
    pub fn without_metric_name(mut self) -> Self {
        self.remove(METRIC_NAME);
        self
    }

    /// Only the labels named in `names`.
    pub fn keep_only(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|l| names.iter().any(|n| **n == *l.name))
                .cloned()
                .collect(),
        )
    }

    /// Without the labels named in `names`.
    pub fn without(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|l| !names.iter().any(|n| **n == *l.name))
                .cloned()
                .collect(),
        )
    }

    /// A key equal for two sets exactly when they agree on the labels `on` names (`on` true),
    /// or on every label but those and the metric name (`on` false): Prometheus's matching
    /// signature, exact rather than hashed.
    pub fn signature(&self, on: bool, names: &[String]) -> String {
        let mut key = String::new();
        for label in &self.0 {
            let listed = names.iter().any(|n| **n == *label.name);
            let included = if on {
                listed
            } else {
                !listed && &*label.name != METRIC_NAME
            };
            if included {
                key.push_str(&label.name);
                key.push('\u{ff}');
                key.push_str(&label.value);
                key.push('\u{ff}');
            }
        }
        key
    }
}

impl Labels {
    /// Prometheus's `labels.Labels.String()`: every label in braces, the name included — the
    /// form Prometheus's error messages use.
    pub fn prometheus_string(&self) -> String {
        let inner: Vec<String> = self
            .0
            .iter()
            .map(|l| format!("{}={:?}", l.name, l.value))
            .collect();
        format!("{{{}}}", inner.join(", "))
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        f.write_str(name)?;
        let mut rest = self.0.iter().filter(|l| &*l.name != METRIC_NAME).peekable();
        if rest.peek().is_none() && !name.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        let mut first = true;
        for label in rest {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", label.name, label.value)?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_without_empty_values_and_rendered_like_prometheus() {
        let labels = Labels::from_pairs([("b", "2"), ("__name__", "up"), ("a", "1"), ("c", "")]);
        assert_eq!(labels.to_string(), r#"up{a="1", b="2"}"#);
        assert_eq!(labels.get("c"), "");
        assert_eq!(Labels::new().to_string(), "{}");
        assert_eq!(Labels::from_pairs([("__name__", "up")]).to_string(), "up");
    }

    #[test]
    fn signatures_agree_exactly_on_the_chosen_labels() {
        let a = Labels::from_pairs([("__name__", "x"), ("job", "j"), ("i", "1")]);
        let b = Labels::from_pairs([("__name__", "y"), ("job", "j"), ("i", "2")]);
        let job = vec!["job".to_string()];
        assert_eq!(a.signature(true, &job), b.signature(true, &job));
        assert_ne!(a.signature(false, &job), b.signature(false, &job));
        let i = vec!["i".to_string()];
        assert_eq!(
            a.signature(false, &i),
            b.signature(false, &i),
            "ignoring drops the name too"
        );
    }
}
