//! Prometheus exposition formats: text 0.0.4 and OpenMetrics 1.0, read line by line without
//! allocating ([`Lexer`]), the names and label sets of new series checked once ([`labels`]), and
//! which part of a metric family a sample is ([`SampleRole`]).
//!
//! A malformed line fails the whole body with its line number, as Prometheus fails the scrape.
//! What the lines mean (families, histograms, staleness) is the scraper's business
//! (`sources::prometheus_scrape::series`).

pub mod labels;
mod lexer;
pub mod number;
mod scan;

pub use lexer::Lexer;

/// The `Accept` header Prometheus 2.42 sends: OpenMetrics preferred, text 0.0.4 accepted.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Which grammar a body is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4 (also what a target answers with no or an unknown content type).
    Text,
    OpenMetrics,
}

impl Format {
    /// The format of a response by its `Content-Type`, as Prometheus decides it.
    pub fn from_content_type(content_type: Option<&str>) -> Self {
        match content_type {
            Some(ct) if ct.trim_start().starts_with("application/openmetrics-text") => {
                Format::OpenMetrics
            }
            _ => Format::Text,
        }
    }
}

/// A family's type (`# TYPE`). Text's `untyped` is OpenMetrics' `unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    fn parse(text: &[u8], format: Format) -> Option<Self> {
        Some(match (text, format) {
            (b"counter", _) => MetricType::Counter,
            (b"gauge", _) => MetricType::Gauge,
            (b"histogram", _) => MetricType::Histogram,
            (b"summary", _) => MetricType::Summary,
            (b"untyped", Format::Text) | (b"unknown", Format::OpenMetrics) => MetricType::Unknown,
            (b"gaugehistogram", Format::OpenMetrics) => MetricType::GaugeHistogram,
            (b"info", Format::OpenMetrics) => MetricType::Info,
            (b"stateset", Format::OpenMetrics) => MetricType::StateSet,
            _ => return None,
        })
    }

    /// The sample name suffixes a family of this type has (besides the bare name).
    fn suffixes(self, format: Format) -> &'static [(&'static str, SampleRole)] {
        use SampleRole as R;
        match (self, format) {
            (MetricType::Counter, Format::OpenMetrics) => {
                &[("_total", R::Value), ("_created", R::Created)]
            }
            (MetricType::Counter, Format::Text) => &[],
            (MetricType::Histogram, _) => &[
                ("_bucket", R::Bucket),
                ("_sum", R::Sum),
                ("_count", R::Count),
                ("_created", R::Created),
            ],
            (MetricType::GaugeHistogram, _) => &[
                ("_bucket", R::Bucket),
                ("_gsum", R::Sum),
                ("_gcount", R::Count),
            ],
            (MetricType::Summary, _) => &[
                ("_sum", R::Sum),
                ("_count", R::Count),
                ("_created", R::Created),
            ],
            (MetricType::Info, _) => &[("_info", R::Value)],
            _ => &[],
        }
    }

    /// Which part of a family named `family` of this type the sample `sample` is, if it belongs
    /// to the family at all. A summary's bare name is a quantile.
    pub fn role_of(self, family: &[u8], sample: &[u8], format: Format) -> Option<SampleRole> {
        let rest = sample.strip_prefix(family)?;
        if rest.is_empty() {
            return match (self, format) {
                (MetricType::Summary, _) => Some(SampleRole::Quantile),
                (MetricType::Histogram | MetricType::GaugeHistogram, _) => None,
                (MetricType::Info, Format::OpenMetrics) => None,
                (MetricType::Counter, Format::OpenMetrics) => None,
                _ => Some(SampleRole::Value),
            };
        }
        self.suffixes(format)
            .iter()
            .find(|(suffix, _)| suffix.as_bytes() == rest)
            .map(|&(_, role)| role)
    }
}

/// What a sample is within its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleRole {
    /// The value of a counter, gauge, info, stateset or unknown series.
    Value,
    /// A histogram bucket (`le` label).
    Bucket,
    /// A summary quantile (`quantile` label).
    Quantile,
    Sum,
    Count,
    /// When the series began (OpenMetrics `_created`, seconds).
    Created,
}

/// One line of a body.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    Sample(Sample<'a>),
    /// Names are checked (and so ASCII), kept as bytes.
    Type {
        family: &'a [u8],
        kind: MetricType,
    },
    /// The help text as written (escapes not undone).
    Help {
        family: &'a [u8],
        text: &'a [u8],
    },
    Unit {
        family: &'a [u8],
        unit: &'a [u8],
    },
    /// OpenMetrics' `# EOF`.
    Eof,
}

/// A sample line, as slices of the body.
#[derive(Debug, PartialEq)]
pub struct Sample<'a> {
    /// The metric name and label set exactly as written: the key of the series cache.
    pub series: &'a [u8],
    /// The metric name, unchecked (see [`labels::valid_metric_name`]).
    pub name: &'a [u8],
    /// The label set between the braces, unchecked (see [`labels::parse_labels`]).
    pub labels: &'a [u8],
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    /// OpenMetrics: the exemplar after `#`, unparsed.
    pub exemplar: Option<&'a [u8]>,
}

/// An OpenMetrics exemplar, parsed: `{trace_id="…"} 0.067 1520879607.789`.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    pub labels: Vec<(
        sextant_pipeline::flow::event::Text,
        sextant_pipeline::flow::event::Text,
    )>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// Parses the exemplar text after a sample's `#`; `None` when it is malformed.
pub fn parse_exemplar(text: &[u8]) -> Option<Exemplar> {
    let text = text.strip_prefix(b"{")?;
    let close = lexer::closing_brace(text, 0)?;
    let mut labels = Vec::new();
    labels::parse_labels(&text[..close], &mut labels).ok()?;
    let mut rest = text[close + 1..]
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|w| !w.is_empty());
    let value = number::parse_value(rest.next()?)?;
    let timestamp_ms = match rest.next() {
        Some(ts) => Some(number::parse_seconds_as_millis(ts)?),
        None => None,
    };
    if rest.next().is_some() {
        return None;
    }
    Some(Exemplar {
        labels,
        value,
        timestamp_ms,
    })
}

/// Why a body was refused, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    pub line: usize,
    pub reason: &'static str,
}

#[cfg(test)]
mod tests;
