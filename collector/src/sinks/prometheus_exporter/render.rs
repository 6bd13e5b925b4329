//! The exposition page: Prometheus text 0.0.4, or OpenMetrics 1.0 when the scraper asks for it.
//!
//! A family is written with `# HELP` and `# TYPE`, then its series in the order first seen
//! (a histogram's buckets, sum and count together). OpenMetrics names a counter's family
//! without `_total` (a counter whose name lacks it is declared `unknown`, as OpenMetrics allows
//! no other name) and ends with `# EOF`. Values are written in the shortest form that reads
//! back exactly; no timestamps (the scraper's time is the sample's, as for any target).

use std::io::Write as _;

use sextant_pipeline::flow::event::prometheus::FamilyType;

use super::store::{Family, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for.
    pub fn negotiate(accept: &str) -> Self {
        if accept.contains("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Writes every family with a series into `out`.
pub fn render(store: &Store, format: Format, out: &mut Vec<u8>) {
    for family in &store.families {
        let mut members = family
            .members
            .iter()
            .filter_map(|&id| store.series[id as usize].as_ref())
            .peekable();
        if members.peek().is_none() {
            continue;
        }
        header(family, format, out);
        for series in members {
            out.extend_from_slice(series.prefix.as_bytes());
            out.push(b' ');
            push_value(out, series.value);
            out.push(b'\n');
        }
    }
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}

fn header(family: &Family, format: Format, out: &mut Vec<u8>) {
    let (name, kind) = match (format, family.kind) {
        (Format::OpenMetrics, FamilyType::Counter) => match family.name.strip_suffix("_total") {
            Some(base) => (base, "counter"),
            None => (family.name.as_str(), "unknown"),
        },
        (_, kind) => (family.name.as_str(), type_name(kind)),
    };
    if !family.help.is_empty() {
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        for c in family.help.chars() {
            match c {
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '"' if format == Format::OpenMetrics => out.extend_from_slice(b"\\\""),
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        out.push(b'\n');
    }
    out.extend_from_slice(b"# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
}

fn type_name(kind: FamilyType) -> &'static str {
    match kind {
        FamilyType::Counter => "counter",
        FamilyType::Gauge => "gauge",
        FamilyType::Histogram => "histogram",
        FamilyType::Summary => "summary",
    }
}

/// A value as the exposition formats read it: integers as integers, others in the shortest
/// form that reads back to the same double, `NaN`, `+Inf`, `-Inf`.
pub fn push_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else if (1e-4..1e21).contains(&v.abs()) {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "{v:e}");
    }
}
