//! The event model: the one shape in which logs, metrics and spans travel through both roles.
//!
//! It follows OTLP's data model field for field, so that OTLP in and out is a cheap, lossless
//! conversion (see [`otlp`]), with one difference: OTLP nests records under their resource and
//! instrumentation scope, while here every record points at its [`Origin`] through an `Arc`. Records
//! from one pod share one `Origin`, batches can be split, merged and routed freely, and converting
//! back to OTLP regroups records by origin.
//!
//! Events never travel one by one: a [`Batch`](crate::flow::batch::Batch) carries [`Events`] of one signal.

pub mod flat_json;
pub mod json;
pub mod otlp;
pub mod prometheus;
mod record_attributes;
mod size;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use record_attributes::RecordAttributes;
pub use size::ByteSize;

/// The string of attribute keys and string values. Keys and most values in logs are short
/// (`level`, `info`, `GET`): up to 24 bytes live inline, without an allocation, which is most of
/// what turning a JSON message into attributes would otherwise allocate.
pub type Text = compact_str::CompactString;

/// A value of an attribute or a log body: OTLP's `AnyValue`.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// No value (OTLP's `AnyValue` with nothing set).
    #[default]
    Empty,
    Str(Text),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<KeyValue>),
}

impl Value {
    /// The value as a JSON scalar (a string, boolean, number or null), if it is one.
    pub fn as_scalar(&self) -> Option<flat_json::Scalar<'_>> {
        use flat_json::Scalar;
        Some(match self {
            Value::Empty => Scalar::Null,
            Value::Str(s) => Scalar::Str(s),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Int(i) => Scalar::Int(*i),
            Value::Double(d) => Scalar::Double(*d),
            Value::Bytes(_) | Value::Array(_) | Value::Map(_) => return None,
        })
    }

    /// The value as a string slice, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Renders scalars as text the way a sink that wants text (a log group name, a message) needs
    /// it; composite values are rendered as JSON.
    pub fn to_text(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Value::Str(s) => Cow::Borrowed(s),
            Value::Empty => Cow::Borrowed(""),
            Value::Bool(b) => Cow::Owned(b.to_string()),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Double(d) => Cow::Owned(d.to_string()),
            Value::Bytes(b) => Cow::Owned(String::from_utf8_lossy(b).into_owned()),
            Value::Array(_) | Value::Map(_) => Cow::Owned(self.to_json().to_string()),
        }
    }

    /// The value as JSON, for the file and console sinks and for text payloads.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Empty => J::Null,
            Value::Str(s) => J::String(s.to_string()),
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
            Value::Bytes(b) => J::String(String::from_utf8_lossy(b).into_owned()),
            Value::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
            Value::Map(m) => attributes_to_json(m),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(Text::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(Text::from(s))
    }
}

impl From<Text> for Value {
    fn from(s: Text) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

/// One attribute: OTLP's `KeyValue`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct KeyValue {
    pub key: Text,
    pub value: Value,
}

impl KeyValue {
    pub fn new(key: impl Into<Text>, value: impl Into<Value>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Attributes keep OTLP's order and may (as in OTLP) repeat a key; lookups take the first.
pub type Attributes = Vec<KeyValue>;

/// The first value of `key` in `attributes`.
pub fn find_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

/// Attributes as a JSON object (the first value of a repeated key wins).
pub fn attributes_to_json(attributes: &[KeyValue]) -> serde_json::Value {
    let mut map = serde_json::Map::with_capacity(attributes.len());
    for kv in attributes {
        map.entry(kv.key.to_string())
            .or_insert_with(|| kv.value.to_json());
    }
    serde_json::Value::Object(map)
}

/// OTLP's `Resource`: what produced the telemetry (host, pod, service).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Resource {
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub schema_url: String,
}

/// OTLP's `InstrumentationScope`: the library that produced it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub schema_url: String,
}

/// Where a record comes from; shared by every record of one resource and scope.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Origin {
    pub resource: Resource,
    pub scope: Scope,
}

impl Origin {
    /// A resource attribute, for templates and routing.
    pub fn resource_attribute(&self, key: &str) -> Option<&Value> {
        find_attribute(&self.resource.attributes, key)
    }
}

/// A 16-byte trace id; OTLP's empty id is `None` where it is optional.
pub type TraceId = [u8; 16];
/// An 8-byte span id.
pub type SpanId = [u8; 8];

/// A log record: OTLP's `LogRecord` with its origin.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LogEvent {
    pub origin: Arc<Origin>,
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: String,
    pub body: Value,
    pub attributes: RecordAttributes,
    pub dropped_attributes_count: u32,
    pub flags: u32,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub event_name: String,
}

impl LogEvent {
    /// An attribute of the record, else of its resource.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        find_attribute(&self.attributes, key).or_else(|| self.origin.resource_attribute(key))
    }

    /// The time to file the record under: its own time, else when it was observed.
    pub fn effective_time_unix_nano(&self) -> u64 {
        if self.time_unix_nano != 0 {
            self.time_unix_nano
        } else {
            self.observed_time_unix_nano
        }
    }
}

/// OTLP's aggregation temporality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Temporality {
    #[default]
    Unspecified,
    Delta,
    Cumulative,
}

/// A number that is an integer or a float, as OTLP keeps them apart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i64),
    Double(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Double(d) => d,
        }
    }
}

/// OTLP's `Exemplar`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Exemplar {
    pub filtered_attributes: Attributes,
    pub time_unix_nano: u64,
    pub value: Option<Number>,
    pub span_id: Option<SpanId>,
    pub trace_id: Option<TraceId>,
}

/// OTLP's `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point carries no value; the series is
/// stale (Prometheus's stale marker).
pub const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// A gauge or sum point.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NumberPoint {
    pub attributes: Attributes,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub value: Option<Number>,
    pub exemplars: Vec<Exemplar>,
    pub flags: u32,
}

/// An explicit-bucket histogram point.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct HistogramPoint {
    pub attributes: Attributes,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub bucket_counts: Vec<u64>,
    pub explicit_bounds: Vec<f64>,
    pub exemplars: Vec<Exemplar>,
    pub flags: u32,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// One side of an exponential histogram.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ExponentialBuckets {
    pub offset: i32,
    pub bucket_counts: Vec<u64>,
}

/// An exponential histogram point.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ExponentialHistogramPoint {
    pub attributes: Attributes,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub scale: i32,
    pub zero_count: u64,
    pub positive: Option<ExponentialBuckets>,
    pub negative: Option<ExponentialBuckets>,
    pub flags: u32,
    pub exemplars: Vec<Exemplar>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub zero_threshold: f64,
}

/// A summary point (quantile, value).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SummaryPoint {
    pub attributes: Attributes,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: f64,
    pub quantile_values: Vec<(f64, f64)>,
    pub flags: u32,
}

/// The points of a metric, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricData {
    Gauge(Vec<NumberPoint>),
    Sum {
        points: Vec<NumberPoint>,
        temporality: Temporality,
        monotonic: bool,
    },
    Histogram {
        points: Vec<HistogramPoint>,
        temporality: Temporality,
    },
    ExponentialHistogram {
        points: Vec<ExponentialHistogramPoint>,
        temporality: Temporality,
    },
    Summary(Vec<SummaryPoint>),
}

impl MetricData {
    /// How many points it carries.
    pub fn point_count(&self) -> usize {
        match self {
            MetricData::Gauge(p) => p.len(),
            MetricData::Sum { points, .. } => points.len(),
            MetricData::Histogram { points, .. } => points.len(),
            MetricData::ExponentialHistogram { points, .. } => points.len(),
            MetricData::Summary(p) => p.len(),
        }
    }
}

/// A metric with its points: OTLP's `Metric` with its origin.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub origin: Arc<Origin>,
    pub name: String,
    pub description: String,
    pub unit: String,
    pub metadata: Attributes,
    /// `None` only for an OTLP metric that carried no data at all.
    pub data: Option<MetricData>,
}

/// OTLP's span event (an annotation at a point in time).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SpanEvent {
    pub time_unix_nano: u64,
    pub name: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
}

/// OTLP's span link.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SpanLink {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

/// OTLP's span kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

/// OTLP's span status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

/// A span: OTLP's `Span` with its origin.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Span {
    pub origin: Arc<Origin>,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub parent_span_id: Option<SpanId>,
    pub flags: u32,
    pub name: String,
    pub kind: SpanKind,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Attributes,
    pub dropped_attributes_count: u32,
    pub events: Vec<SpanEvent>,
    pub dropped_events_count: u32,
    pub links: Vec<SpanLink>,
    pub dropped_links_count: u32,
    /// `None` when OTLP carried no status message at all.
    pub status: Option<(StatusCode, String)>,
}

/// The signal of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    Logs,
    Metrics,
    Traces,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
            Signal::Traces => "traces",
        }
    }
}

/// A set of signals: what a source can produce, what a sink takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Signals(u8);

impl Signals {
    pub const NONE: Signals = Signals(0);
    pub const LOGS: Signals = Signals(1);
    pub const METRICS: Signals = Signals(2);
    pub const TRACES: Signals = Signals(4);
    pub const ALL: Signals = Signals(7);

    pub fn of(signal: Signal) -> Signals {
        match signal {
            Signal::Logs => Signals::LOGS,
            Signal::Metrics => Signals::METRICS,
            Signal::Traces => Signals::TRACES,
        }
    }

    pub fn contains(self, signal: Signal) -> bool {
        self.0 & Signals::of(signal).0 != 0
    }

    pub fn union(self, other: Signals) -> Signals {
        Signals(self.0 | other.0)
    }

    pub fn intersects(self, other: Signals) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::fmt::Display for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [Signal::Logs, Signal::Metrics, Signal::Traces]
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Signal::as_str)
            .collect();
        if names.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&names.join(", "))
        }
    }
}

/// Events of one signal, as they travel in a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Events {
    Logs(Vec<LogEvent>),
    Metrics(Vec<Metric>),
    Spans(Vec<Span>),
}

impl Events {
    pub fn signal(&self) -> Signal {
        match self {
            Events::Logs(_) => Signal::Logs,
            Events::Metrics(_) => Signal::Metrics,
            Events::Spans(_) => Signal::Traces,
        }
    }

    /// Records in it: log records, metric points, or spans.
    pub fn len(&self) -> usize {
        match self {
            Events::Logs(l) => l.len(),
            Events::Metrics(m) => m
                .iter()
                .map(|m| m.data.as_ref().map_or(0, MetricData::point_count))
                .sum(),
            Events::Spans(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Events::Logs(l) => l.is_empty(),
            Events::Metrics(m) => m.is_empty(),
            Events::Spans(s) => s.is_empty(),
        }
    }

    /// Calls `f` with each record's origin, in order.
    pub fn for_each_origin(&mut self, mut f: impl FnMut(&mut Arc<Origin>)) {
        match self {
            Events::Logs(v) => v.iter_mut().for_each(|e| f(&mut e.origin)),
            Events::Metrics(v) => v.iter_mut().for_each(|e| f(&mut e.origin)),
            Events::Spans(v) => v.iter_mut().for_each(|e| f(&mut e.origin)),
        }
    }

    /// Appends `other` if it is of the same signal; gives it back otherwise.
    pub fn append(&mut self, other: Events) -> Result<(), Events> {
        match (self, other) {
            (Events::Logs(a), Events::Logs(mut b)) => a.append(&mut b),
            (Events::Metrics(a), Events::Metrics(mut b)) => a.append(&mut b),
            (Events::Spans(a), Events::Spans(mut b)) => a.append(&mut b),
            (_, other) => return Err(other),
        }
        Ok(())
    }

    /// Makes room for `records` records (log records, metrics, spans) in all, at once, so that
    /// merging batches into this one grows it once rather than doubling it again and again (each
    /// doubling copies every record, and the last can leave it nearly twice the size it needs).
    pub fn reserve_total(&mut self, records: usize) {
        fn reserve<T>(v: &mut Vec<T>, total: usize) {
            v.reserve_exact(total.saturating_sub(v.len()));
        }
        match self {
            Events::Logs(l) => reserve(l, records),
            Events::Metrics(m) => reserve(m, records),
            Events::Spans(s) => reserve(s, records),
        }
    }

    /// Records held: log records, metrics (not their points), spans.
    pub fn records(&self) -> usize {
        match self {
            Events::Logs(l) => l.len(),
            Events::Metrics(m) => m.len(),
            Events::Spans(s) => s.len(),
        }
    }

    /// Splits in two halves by record (log record, metric, span); `Err(self)` if it holds fewer
    /// than two.
    pub fn halve(self) -> Result<(Events, Events), Events> {
        fn split<T>(mut v: Vec<T>) -> Result<(Vec<T>, Vec<T>), Vec<T>> {
            if v.len() < 2 {
                return Err(v);
            }
            let second = v.split_off(v.len() / 2);
            Ok((v, second))
        }
        match self {
            Events::Logs(v) => split(v)
                .map(|(a, b)| (Events::Logs(a), Events::Logs(b)))
                .map_err(Events::Logs),
            Events::Metrics(v) => split(v)
                .map(|(a, b)| (Events::Metrics(a), Events::Metrics(b)))
                .map_err(Events::Metrics),
            Events::Spans(v) => split(v)
                .map(|(a, b)| (Events::Spans(a), Events::Spans(b)))
                .map_err(Events::Spans),
        }
    }

    /// An empty container of the same signal.
    pub fn empty_like(&self) -> Events {
        match self {
            Events::Logs(_) => Events::Logs(Vec::new()),
            Events::Metrics(_) => Events::Metrics(Vec::new()),
            Events::Spans(_) => Events::Spans(Vec::new()),
        }
    }
}
