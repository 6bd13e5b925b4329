//! A metric datum as PutMetricData takes it, and the naming rules Sextant applies before anything
//! reaches CloudWatch.
//!
//! Names (metrics, dimensions) and dimension values CloudWatch would refuse are fixed, not sent
//! to fail a request: characters outside printable ASCII become `_`, a leading `:` becomes `_`,
//! names are cut at 255 characters and values at 1024. A name or value with no non-space
//! character cannot be fixed: the metric is dropped (name) or the dimension counts as missing
//! (value). The caller counts each fix and drop.

use std::borrow::Cow;

use compact_str::CompactString;

use super::limits::{MAX_DIMENSION_VALUE_LEN, MAX_NAME_LEN};

pub type Text = CompactString;

/// One entry of PutMetricData's `MetricData`.
#[derive(Clone, Debug, PartialEq)]
pub struct Datum {
    pub name: Text,
    /// In the order of the dimension set (CloudWatch treats order as insignificant).
    pub dimensions: Vec<(Text, Text)>,
    pub timestamp_ms: i64,
    /// A CloudWatch standard unit name.
    pub unit: &'static str,
    pub value: DatumValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DatumValue {
    Single(f64),
    /// Values with how often each occurred (at most 150 pairs). A point with more pairs is
    /// several datums; the first carries the observations' own sum (the OTLP point's, never
    /// recomputed from the values, which stand for buckets), the ones that continue it `None`.
    Distribution {
        values: Vec<f64>,
        counts: Vec<f64>,
        sum: Option<f64>,
    },
    Statistics {
        count: f64,
        sum: f64,
        min: f64,
        max: f64,
    },
}

impl DatumValue {
    /// How many values it carries (what CloudWatch bills and limits).
    pub fn value_count(&self) -> usize {
        match self {
            DatumValue::Distribution { values, .. } => values.len(),
            _ => 1,
        }
    }
}

/// A name or value made acceptable to CloudWatch; `None` if nothing acceptable is left.
/// `fixed` tells whether it had to change.
pub struct Cleaned<'a> {
    pub text: Cow<'a, str>,
    pub fixed: bool,
}

fn clean(s: &str, max_len: usize) -> Option<Cleaned<'_>> {
    let printable = |b: u8| (0x20..0x7f).contains(&b);
    if s.bytes().all(|b| b == b' ') {
        return None;
    }
    if s.len() <= max_len && !s.starts_with(':') && s.bytes().all(printable) {
        return Some(Cleaned {
            text: Cow::Borrowed(s),
            fixed: false,
        });
    }
    let mut out = String::with_capacity(s.len().min(max_len));
    for (i, c) in s.chars().take(max_len).enumerate() {
        let ok = c.is_ascii() && printable(c as u8) && !(i == 0 && c == ':');
        out.push(if ok { c } else { '_' });
    }
    Some(Cleaned {
        text: Cow::Owned(out),
        fixed: true,
    })
}

/// A metric or dimension name.
pub fn clean_name(s: &str) -> Option<Cleaned<'_>> {
    clean(s, MAX_NAME_LEN)
}

/// A dimension value.
pub fn clean_value(s: &str) -> Option<Cleaned<'_>> {
    clean(s, MAX_DIMENSION_VALUE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fixed_by_the_documented_rules() {
        let ok = clean_name("http_requests_total").map(|c| (c.text.into_owned(), c.fixed));
        assert_eq!(ok, Some(("http_requests_total".into(), false)));
        let fixed = clean_name(":café\tbar").map(|c| (c.text.into_owned(), c.fixed));
        assert_eq!(fixed, Some(("_caf__bar".into(), true)));
        assert!(clean_name("   ").is_none());
        assert!(clean_name("").is_none());
        let long = "x".repeat(300);
        let cut = clean_name(&long).map(|c| c.text.len());
        assert_eq!(cut, Some(255));
        let value = "v".repeat(1025);
        assert_eq!(clean_value(&value).map(|c| c.text.len()), Some(1024));
        assert_eq!(clean_value(&"v".repeat(1024)).map(|c| c.fixed), Some(false));
    }
}
