//! Relabelling with Prometheus's semantics: `relabel_configs` on targets and
//! `metric_relabel_configs` on series. Regexes are anchored at both ends; a label whose value
//! ends up empty is removed; `hashmod` takes the last eight bytes of the MD5 of the joined
//! values, as Prometheus does, so a target lands in the same shard under either.

use md5::{Digest, Md5};
use regex::Regex;
use serde::Deserialize;
use sextant_pipeline::flow::event::Text;

/// A label set being relabelled: names are distinct; order is not significant.
pub type Labels = Vec<(Text, Text)>;

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
    KeepEqual,
    DropEqual,
}

/// One rule as written in the config (Prometheus's field names and defaults).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    pub regex: Option<String>,
    pub target_label: Option<String>,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    pub modulus: Option<u64>,
    #[serde(default)]
    pub action: Action,
}

fn default_separator() -> String {
    ";".into()
}

fn default_replacement() -> String {
    "$1".into()
}

/// A checked rule, its regex compiled.
#[derive(Clone, Debug)]
pub struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    target_label: String,
    replacement: String,
    modulus: u64,
    action: Action,
}

impl RelabelConfig {
    /// Checks the rule as Prometheus does at load time.
    pub fn compile(&self) -> Result<Rule, String> {
        let pattern = self.regex.as_deref().unwrap_or("(.*)");
        let regex = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| format!("regex {pattern:?}: {e}"))?;
        let target = self.target_label.clone().unwrap_or_default();
        let needs_target = matches!(
            self.action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && target.is_empty() {
            return Err(format!("action {:?} needs target_label", self.action).to_lowercase());
        }
        let needs_sources = matches!(
            self.action,
            Action::Keep | Action::Drop | Action::HashMod | Action::KeepEqual | Action::DropEqual
        );
        if needs_sources && self.source_labels.is_empty() {
            return Err(format!("action {:?} needs source_labels", self.action).to_lowercase());
        }
        if self.action == Action::HashMod && self.modulus.unwrap_or(0) == 0 {
            return Err("action hashmod needs a modulus above 0".into());
        }
        if matches!(self.action, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty() || self.target_label.is_some())
        {
            return Err("labeldrop and labelkeep take only regex".into());
        }
        Ok(Rule {
            source_labels: self.source_labels.clone(),
            separator: self.separator.clone(),
            regex,
            target_label: target,
            replacement: self.replacement.clone(),
            modulus: self.modulus.unwrap_or(0),
            action: self.action,
        })
    }
}

fn get<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

fn set(labels: &mut Labels, name: &str, value: &str) {
    match labels.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) if value.is_empty() => *v = Text::default(),
        Some((_, v)) => *v = Text::from(value),
        None if value.is_empty() => {}
        None => labels.push((Text::from(name), Text::from(value))),
    }
}

impl Rule {
    fn joined(&self, labels: &Labels) -> String {
        let mut out = String::new();
        for (i, name) in self.source_labels.iter().enumerate() {
            if i > 0 {
                out.push_str(&self.separator);
            }
            out.push_str(get(labels, name));
        }
        out
    }

    /// Applies the rule; `false` when it drops the label set.
    fn apply(&self, labels: &mut Labels) -> bool {
        match self.action {
            Action::Keep => return self.regex.is_match(&self.joined(labels)),
            Action::Drop => return !self.regex.is_match(&self.joined(labels)),
            Action::KeepEqual => return self.joined(labels) == get(labels, &self.target_label),
            Action::DropEqual => return self.joined(labels) != get(labels, &self.target_label),
            Action::Replace => {
                let value = self.joined(labels);
                if let Some(caps) = self.regex.captures(&value) {
                    let mut target = String::new();
                    caps.expand(&self.target_label, &mut target);
                    let mut replaced = String::new();
                    caps.expand(&self.replacement, &mut replaced);
                    if exposition_label_name(&target) {
                        set(labels, &target, &replaced);
                    }
                }
            }
            Action::Lowercase => {
                let value = self.joined(labels).to_lowercase();
                set(labels, &self.target_label.clone(), &value);
            }
            Action::Uppercase => {
                let value = self.joined(labels).to_uppercase();
                set(labels, &self.target_label.clone(), &value);
            }
            Action::HashMod => {
                let digest = Md5::digest(self.joined(labels).as_bytes());
                let mut last8 = [0u8; 8];
                last8.copy_from_slice(&digest[8..16]);
                let value = (u64::from_be_bytes(last8) % self.modulus).to_string();
                set(labels, &self.target_label.clone(), &value);
            }
            Action::LabelMap => {
                let mut added = Vec::new();
                for (name, value) in labels.iter() {
                    if let Some(caps) = self.regex.captures(name) {
                        let mut target = String::new();
                        caps.expand(&self.replacement, &mut target);
                        added.push((target, value.clone()));
                    }
                }
                for (name, value) in added {
                    set(labels, &name, &value);
                }
            }
            Action::LabelDrop => labels.retain(|(n, _)| !self.regex.is_match(n)),
            Action::LabelKeep => labels.retain(|(n, _)| self.regex.is_match(n)),
        }
        labels.retain(|(_, v)| !v.is_empty());
        true
    }
}

fn exposition_label_name(name: &str) -> bool {
    crate::exposition::labels::valid_label_name(name)
}

/// Applies `rules` in order; `false` when one of them drops the label set.
pub fn relabel(rules: &[Rule], labels: &mut Labels) -> bool {
    rules.iter().all(|r| r.apply(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<Rule> {
        let configs: Vec<RelabelConfig> = serde_yaml_ng::from_str(yaml).unwrap();
        configs.iter().map(|c| c.compile().unwrap()).collect()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(n, v)| (Text::from(*n), Text::from(*v)))
            .collect()
    }

    fn sorted(mut l: Labels) -> Vec<(String, String)> {
        l.sort();
        l.into_iter().map(|(n, v)| (n.into(), v.into())).collect()
    }

    #[test]
    fn replace_keep_drop_and_maps_behave_as_in_prometheus() {
        let r = rules(
            r#"
- source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
  action: keep
  regex: "true"
- source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
  action: replace
  regex: '([^:]+)(?::\d+)?;(\d+)'
  replacement: $1:$2
  target_label: __address__
- action: labelmap
  regex: __meta_kubernetes_pod_label_(.+)
- source_labels: [__meta_kubernetes_namespace]
  target_label: namespace
- regex: __meta_.*
  action: labeldrop
"#,
        );
        let mut l = labels(&[
            ("__address__", "10.0.0.7:8080"),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
                "true",
            ),
            (
                "__meta_kubernetes_pod_annotation_prometheus_io_port",
                "9102",
            ),
            ("__meta_kubernetes_pod_label_app", "api"),
            ("__meta_kubernetes_namespace", "shop"),
        ]);
        assert!(relabel(&r, &mut l));
        assert_eq!(
            sorted(l),
            vec![
                ("__address__".into(), "10.0.0.7:9102".into()),
                ("app".into(), "api".into()),
                ("namespace".into(), "shop".into()),
            ]
        );
        let mut not_annotated = labels(&[("__address__", "10.0.0.8:80")]);
        assert!(!relabel(&r, &mut not_annotated));
    }

    #[test]
    fn an_unmatched_regex_leaves_labels_and_an_empty_result_removes_the_label() {
        let r = rules("- {source_labels: [a], regex: 'x(.*)', target_label: b}\n- {source_labels: [c], target_label: a}\n");
        let mut l = labels(&[("a", "yes"), ("b", "keep")]);
        assert!(relabel(&r, &mut l));
        assert_eq!(sorted(l), vec![("b".into(), "keep".into())]);
    }

    #[test]
    fn hashmod_matches_prometheus_and_bad_rules_are_refused() {
        // Prometheus's own relabel test: "baz", modulus 1000 → "976".
        let r = rules("- {source_labels: [c], target_label: d, modulus: 1000, action: hashmod}\n");
        let mut l = labels(&[("c", "baz")]);
        relabel(&r, &mut l);
        assert_eq!(get(&l, "d"), "976");
        let bad = |yaml: &str| {
            let c: Vec<RelabelConfig> = serde_yaml_ng::from_str(yaml).unwrap();
            c[0].compile().unwrap_err()
        };
        assert_eq!(
            bad("- {action: hashmod, source_labels: [a], target_label: b}"),
            "action hashmod needs a modulus above 0"
        );
        assert_eq!(bad("- {action: keep}"), "action keep needs source_labels");
        assert!(bad("- {regex: '(', target_label: a}").starts_with("regex \"(\""));
        assert_eq!(
            bad("- {action: labeldrop, regex: a, source_labels: [b]}"),
            "labeldrop and labelkeep take only regex"
        );
    }
}
