//! Prometheus's rule-file format as YAML reads it (`rulefmt`): unknown keys are refused, label
//! and annotation values may be any scalar (Go reads `severity: 1` as "1").

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleFileDoc {
    #[serde(default)]
    pub groups: Vec<GroupDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupDoc {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub limit: Option<u64>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub rules: Vec<RuleDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleDoc {
    #[serde(default, deserialize_with = "optional_scalar")]
    pub record: Option<String>,
    #[serde(default, deserialize_with = "optional_scalar")]
    pub alert: Option<String>,
    #[serde(default, deserialize_with = "optional_scalar")]
    pub expr: Option<String>,
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    #[serde(default)]
    pub keep_firing_for: Option<String>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "scalar_map")]
    pub annotations: BTreeMap<String, String>,
}

fn scalar_text(value: serde_yaml_ng::Value) -> Result<String, String> {
    match value {
        serde_yaml_ng::Value::String(s) => Ok(s),
        serde_yaml_ng::Value::Number(n) => Ok(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Ok(b.to_string()),
        serde_yaml_ng::Value::Null => Ok(String::new()),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

fn optional_scalar<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_yaml_ng::Value>::deserialize(deserializer)?;
    value
        .map(scalar_text)
        .transpose()
        .map_err(serde::de::Error::custom)
}

fn scalar_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, serde_yaml_ng::Value>>::deserialize(deserializer)?
        .unwrap_or_default();
    map.into_iter()
        .map(|(k, v)| scalar_text(v).map(|v| (k, v)))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}
