//! The values a template computes with, and how Go prints and tests them.

use std::collections::BTreeMap;

use sextant_pipeline::gofmt;

/// One element of a `query` result: labels and value.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Nil,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Map(BTreeMap<String, String>),
    Samples(Vec<QuerySample>),
    Sample(QuerySample),
    /// The template's data (`.`): labels, external labels and URL, value.
    Root,
}

impl Val {
    /// Go's `fmt.Sprint` of the value.
    pub(crate) fn print(&self) -> String {
        match self {
            Val::Nil => "<nil>".into(),
            Val::Str(s) => s.clone(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => gofmt::format_g(*f, -1),
            Val::Bool(b) => b.to_string(),
            Val::Map(map) => {
                let entries: Vec<String> = map.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", entries.join(" "))
            }
            Val::Samples(samples) => {
                let entries: Vec<String> = samples.iter().map(print_sample).collect();
                format!("[{}]", entries.join(" "))
            }
            Val::Sample(sample) => format!("&{}", print_sample(sample)),
            Val::Root => "{...}".into(),
        }
    }

    /// Go's `truth`: empty, zero, false and nil are false.
    pub(crate) fn truthy(&self) -> bool {
        match self {
            Val::Nil => false,
            Val::Str(s) => !s.is_empty(),
            Val::Int(i) => *i != 0,
            Val::Float(f) => *f != 0.0,
            Val::Bool(b) => *b,
            Val::Map(m) => !m.is_empty(),
            Val::Samples(s) => !s.is_empty(),
            Val::Sample(_) | Val::Root => true,
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Nil => "nil",
            Val::Str(_) => "string",
            Val::Int(_) => "int",
            Val::Float(_) => "float64",
            Val::Bool(_) => "bool",
            Val::Map(_) => "map[string]string",
            Val::Samples(_) => "template.queryResult",
            Val::Sample(_) => "*template.sample",
            Val::Root => "template.data",
        }
    }
}

fn print_sample(sample: &QuerySample) -> String {
    let labels: Vec<String> = sample
        .labels
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    format!(
        "{{map[{}] {}}}",
        labels.join(" "),
        gofmt::format_g(sample.value, -1)
    )
}
