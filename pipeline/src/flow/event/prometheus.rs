//! Metrics as Prometheus series: the one mapping every Prometheus-facing part uses (the rules'
//! window store, the Prometheus exporter and remote-write sinks), so a rule and a dashboard
//! name the same series.
//!
//! - The name is the metric's, made valid (invalid characters become `_`). Metrics that came
//!   from a Prometheus scrape or a rule keep their names as exposed; others (OTLP from SDKs) get
//!   Prometheus's OTLP suffixes: the unit (`_seconds`, `_bytes`, ...) and `_total` for
//!   monotonic sums, as Prometheus's own OTLP translation adds them.
//! - Labels: every point attribute (names made valid), plus `job` (`service.namespace/` +
//!   `service.name`) and `instance` (`service.instance.id`) from the resource.
//! - Gauges and cumulative sums give one sample a point; histograms `_bucket` (cumulative,
//!   `le` as Go prints it, `+Inf` last), `_sum`, `_count`; summaries one sample a quantile
//!   (`quantile`), `_sum`, `_count`. A point flagged "no recorded value" gives stale markers.
//! - Exponential histograms become classic ones: each bucket's upper bound an `le` (native
//!   histograms are not produced).
//! - Not representable, so skipped and counted: delta temporality, points without a value. (The exporter reads delta
//!   metrics as cumulative and adds them up itself.)

use std::borrow::Cow;

use super::FLAG_NO_RECORDED_VALUE;
use super::{
    ExponentialHistogramPoint, HistogramPoint, KeyValue, Metric, MetricData, NumberPoint,
    SummaryPoint, Temporality, Value,
};
use crate::gofmt::format_g;

/// The scope name of metrics the Prometheus scrape source produced (their names are kept).
pub const SCRAPE_SCOPE: &str = "sextant/prometheus_scrape";

/// The scope name of rule results (recorded series, `ALERTS`; their names are kept).
pub const RULES_SCOPE: &str = "sextant/prometheus_rules";

/// Prometheus's stale marker.
pub const STALE_NAN: f64 = f64::from_bits(0x7ff0_0000_0000_0002);

/// A series' labels, held as their series key (see [`push_key_pair`]): what a store hashes
/// to find the series is built once, and the pairs are read back from it when needed (for a
/// series not seen before).
#[derive(Debug, Default, Clone)]
pub struct SeriesLabels {
    key: Vec<u8>,
    /// Where each pair lies in `key`: its start, the end of its name, the end of its value
    /// (so encoders copy names and values without scanning the key).
    spans: Vec<(u32, u32, u32)>,
    /// The previous key while `set` rewrites it (kept for its allocation).
    spare: Vec<u8>,
}

/// Ends a label name in a series key (a byte no UTF-8 text holds).
const KEY_NAME_END: u8 = 0xff;
/// Ends a label value in a series key.
const KEY_VALUE_END: u8 = 0xfe;

/// Appends one label to a series key: the identity of a label set written as its pairs in
/// name order, each `name 0xff value 0xfe`. Two label sets have the same key exactly when
/// they are equal, so a key is what a store hashes to find a series.
pub fn push_key_pair(key: &mut Vec<u8>, name: &str, value: &str) {
    // Label texts are short: a copy loop the compiler inlines beats a call to `memcpy` each.
    key.reserve(name.len() + value.len() + 2);
    key.extend(name.as_bytes().iter().copied());
    key.push(KEY_NAME_END);
    key.extend(value.as_bytes().iter().copied());
    key.push(KEY_VALUE_END);
}

/// The pairs of a series key, in order.
pub fn key_pairs(key: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).unwrap_or_default()
    }
    key.split(|&b| b == KEY_VALUE_END)
        .filter(|pair| !pair.is_empty())
        .map(
            move |pair| match pair.iter().position(|&b| b == KEY_NAME_END) {
                Some(at) => (text(&pair[..at]), text(&pair[at + 1..])),
                None => (text(pair), ""),
            },
        )
}

impl SeriesLabels {
    /// The pairs, sorted by name (no empty values).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        key_pairs(&self.key)
    }

    /// The series key of these labels (see [`push_key_pair`]).
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.pairs()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v)
    }

    /// The pairs as bytes, sorted by name, found without reading the key.
    pub fn pair_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|&(start, name_end, value_end)| {
            let (start, name_end, value_end) =
                (start as usize, name_end as usize, value_end as usize);
            (
                &self.key[start..name_end],
                &self.key[name_end + 1..value_end],
            )
        })
    }

    fn clear(&mut self) {
        self.key.clear();
        self.spans.clear();
    }

    /// Appends a label that sorts after every label already here (none if `value` is empty).
    fn push(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            let start = self.key.len();
            push_key_pair(&mut self.key, name, value);
            let name_end = start + name.len();
            self.spans.push((
                start as u32,
                name_end as u32,
                (name_end + 1 + value.len()) as u32,
            ));
        }
    }

    /// Sets `name` to `value`, or removes it when `value` is empty.
    fn set(&mut self, name: &str, value: &str) {
        let mut old = std::mem::take(&mut self.spare);
        std::mem::swap(&mut self.key, &mut old);
        self.clear();
        let mut written = false;
        for (n, v) in key_pairs(&old) {
            if !written && n >= name {
                written = true;
                self.push(name, value);
                if n == name {
                    continue;
                }
            }
            self.push(n, v);
        }
        if !written {
            self.push(name, value);
        }
        self.spare = old;
    }
}

/// The labels a metric's resource gives every point (`instance`, `job`), sorted by name.
type ResourceLabels<'a> = Vec<(&'static str, Cow<'a, str>)>;

/// Where a label of a point takes its value from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Resource(usize),
    Attribute(usize),
    Name,
}

/// The label names of points with one list of attribute keys, in name order, each with the
/// last of the resource labels, the attributes and `__name__` that sets it (an empty value
/// leaves the label out, as it removes it in Prometheus). A metric's points nearly always carry
/// the same keys in the same order, so this is worked out once and each point copies values.
#[derive(Debug, Default)]
struct PointLayout<'a> {
    keys: Vec<&'a str>,
    labels: Vec<(Cow<'a, str>, Source)>,
    built: bool,
}

impl<'a> PointLayout<'a> {
    /// Makes the layout fit `attributes` (rebuilt only when their keys differ).
    fn fit(&mut self, resource: &ResourceLabels<'_>, attributes: &'a [KeyValue]) {
        if self.built
            && self.keys.len() == attributes.len()
            && self.keys.iter().zip(attributes).all(|(k, kv)| *k == kv.key)
        {
            return;
        }
        self.built = true;
        self.keys.clear();
        self.keys
            .extend(attributes.iter().map(|kv| kv.key.as_str()));
        self.labels.clear();
        let named = resource.iter().enumerate();
        self.labels
            .extend(named.map(|(i, (name, _))| (Cow::Borrowed(*name), Source::Resource(i))));
        let attributes = attributes.iter().enumerate();
        let sources = attributes.map(|(i, kv)| (label_name(&kv.key), Source::Attribute(i)));
        for (name, source) in sources.chain([(Cow::Borrowed("__name__"), Source::Name)]) {
            match self.labels.binary_search_by(|(n, _)| n.as_ref().cmp(&name)) {
                Ok(i) => self.labels[i].1 = source,
                Err(i) => self.labels.insert(i, (name, source)),
            }
        }
    }

    /// Fills `labels` for one point (after [`Self::fit`] for its attributes).
    fn fill(
        &self,
        labels: &mut SeriesLabels,
        resource: &ResourceLabels<'_>,
        attributes: &'a [KeyValue],
        name: &'a str,
    ) {
        labels.clear();
        for (label, source) in &self.labels {
            let value = match *source {
                Source::Resource(i) => Cow::Borrowed(resource[i].1.as_ref()),
                Source::Attribute(i) => value_text(&attributes[i].value),
                Source::Name => Cow::Borrowed(name),
            };
            if !value.is_empty() {
                labels.push(label, &value);
            }
        }
    }
}

/// What the mapping could not represent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unmapped {
    pub delta: u64,
    pub no_value: u64,
}

/// A metric family's type, as Prometheus's metadata gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyType {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

/// A metric's family: its series name (histograms and summaries: the name before `_bucket`,
/// `_sum`, `_count`) and its type; `None` for what [`for_each_sample`] does not map.
pub fn family(metric: &Metric) -> Option<(String, FamilyType)> {
    let native = !matches!(
        metric.origin.scope.name.as_str(),
        SCRAPE_SCOPE | RULES_SCOPE
    );
    let (monotonic, gauge, kind) = match metric.data.as_ref()? {
        MetricData::Gauge(_) => (false, true, FamilyType::Gauge),
        MetricData::Sum {
            temporality: Temporality::Delta,
            ..
        }
        | MetricData::Histogram {
            temporality: Temporality::Delta,
            ..
        }
        | MetricData::ExponentialHistogram {
            temporality: Temporality::Delta,
            ..
        } => return None,
        MetricData::Sum { monotonic, .. } => (
            *monotonic,
            false,
            if *monotonic {
                FamilyType::Counter
            } else {
                FamilyType::Gauge
            },
        ),
        MetricData::Histogram { .. } | MetricData::ExponentialHistogram { .. } => {
            (false, false, FamilyType::Histogram)
        }
        MetricData::Summary(_) => (false, false, FamilyType::Summary),
    };
    let name = metric_name(&metric.name, &metric.unit, native, monotonic, gauge);
    Some((name, kind))
}

/// Calls `sample` for every Prometheus sample of `metric`: labels, milliseconds, value.
pub fn for_each_sample(
    metric: &Metric,
    mut sample: impl FnMut(&SeriesLabels, i64, f64),
) -> Unmapped {
    let mut unmapped = Unmapped::default();
    let Some(data) = &metric.data else {
        return unmapped;
    };
    let native = !matches!(
        metric.origin.scope.name.as_str(),
        SCRAPE_SCOPE | RULES_SCOPE
    );
    let base = resource_labels(&metric.origin.resource.attributes);
    match data {
        MetricData::Gauge(points) => {
            let name = metric_name(&metric.name, &metric.unit, native, false, true);
            number_points(&name, points, &base, &mut unmapped, &mut sample);
        }
        MetricData::Sum {
            points,
            temporality,
            monotonic,
        } => {
            if *temporality == Temporality::Delta {
                unmapped.delta += points.len() as u64;
                return unmapped;
            }
            let name = metric_name(&metric.name, &metric.unit, native, *monotonic, false);
            number_points(&name, points, &base, &mut unmapped, &mut sample);
        }
        MetricData::Histogram {
            points,
            temporality,
        } => {
            if *temporality == Temporality::Delta {
                unmapped.delta += points.len() as u64;
                return unmapped;
            }
            let name = metric_name(&metric.name, &metric.unit, native, false, false);
            for point in points {
                histogram_point(&name, point, &base, &mut sample);
            }
        }
        MetricData::ExponentialHistogram {
            points,
            temporality,
        } => {
            if *temporality == Temporality::Delta {
                unmapped.delta += points.len() as u64;
                return unmapped;
            }
            let name = metric_name(&metric.name, &metric.unit, native, false, false);
            for point in points {
                histogram_point(&name, &explicit_buckets(point), &base, &mut sample);
            }
        }
        MetricData::Summary(points) => {
            let name = metric_name(&metric.name, &metric.unit, native, false, false);
            for point in points {
                summary_point(&name, point, &base, &mut sample);
            }
        }
    }
    unmapped
}

/// An exponential histogram point as classic buckets: each exponential bucket's upper bound
/// becomes an `le` (negative buckets, most negative first; the zero bucket at the zero
/// threshold; then the positive ones), so every Prometheus-facing part reads it as a classic
/// histogram with the same counts.
fn explicit_buckets(point: &ExponentialHistogramPoint) -> HistogramPoint {
    // base = 2^(2^-scale); bucket i holds (base^i, base^(i+1)].
    let step = 2f64.powi(-point.scale);
    let bound = |index: i64| (index as f64 * step).exp2();
    let mut bounds = Vec::new();
    let mut counts = Vec::new();
    if let Some(negative) = &point.negative {
        for (k, &n) in negative.bucket_counts.iter().enumerate().rev() {
            bounds.push(-bound(i64::from(negative.offset) + k as i64));
            counts.push(n);
        }
    }
    bounds.push(point.zero_threshold.max(0.0));
    counts.push(point.zero_count);
    if let Some(positive) = &point.positive {
        for (k, &n) in positive.bucket_counts.iter().enumerate() {
            bounds.push(bound(i64::from(positive.offset) + k as i64 + 1));
            counts.push(n);
        }
    }
    let listed: u64 = counts.iter().sum();
    counts.push(point.count.saturating_sub(listed));
    HistogramPoint {
        attributes: point.attributes.clone(),
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        count: point.count,
        sum: point.sum,
        bucket_counts: counts,
        explicit_bounds: bounds,
        flags: point.flags,
        min: point.min,
        max: point.max,
        ..Default::default()
    }
}

fn millis(time_unix_nano: u64) -> i64 {
    i64::try_from(time_unix_nano / 1_000_000).unwrap_or(i64::MAX)
}

fn is_stale(flags: u32) -> bool {
    flags & FLAG_NO_RECORDED_VALUE != 0
}

fn point_labels<'a>(
    base: &ResourceLabels<'_>,
    attributes: &'a [KeyValue],
    name: &'a str,
) -> SeriesLabels {
    let mut layout = PointLayout::default();
    layout.fit(base, attributes);
    let mut labels = SeriesLabels::default();
    layout.fill(&mut labels, base, attributes, name);
    labels
}

fn number_points<'a>(
    name: &'a str,
    points: &'a [NumberPoint],
    base: &ResourceLabels<'_>,
    unmapped: &mut Unmapped,
    sample: &mut impl FnMut(&SeriesLabels, i64, f64),
) {
    let mut labels = SeriesLabels::default();
    let mut layout = PointLayout::default();
    for point in points {
        let value = match (point.value, is_stale(point.flags)) {
            (_, true) => STALE_NAN,
            (Some(v), false) => v.as_f64(),
            (None, false) => {
                unmapped.no_value += 1;
                continue;
            }
        };
        layout.fit(base, &point.attributes);
        layout.fill(&mut labels, base, &point.attributes, name);
        sample(&labels, millis(point.time_unix_nano), value);
    }
}

fn histogram_point(
    name: &str,
    point: &HistogramPoint,
    base: &ResourceLabels<'_>,
    sample: &mut impl FnMut(&SeriesLabels, i64, f64),
) {
    let t = millis(point.time_unix_nano);
    let stale = is_stale(point.flags);
    let value = |v: f64| if stale { STALE_NAN } else { v };
    let mut labels = point_labels(base, &point.attributes, name);
    labels.set("__name__", &format!("{name}_bucket"));
    let mut cumulative = 0u64;
    for (i, count) in point.bucket_counts.iter().enumerate() {
        cumulative += count;
        let bound = point
            .explicit_bounds
            .get(i)
            .copied()
            .unwrap_or(f64::INFINITY);
        labels.set("le", &format_g(bound, -1));
        sample(&labels, t, value(cumulative as f64));
    }
    if point.explicit_bounds.len() >= point.bucket_counts.len() {
        // No overflow bucket given: +Inf is the count.
        labels.set("le", "+Inf");
        sample(&labels, t, value(point.count as f64));
    }
    labels.set("le", "");
    sum_and_count(
        name,
        &mut labels,
        t,
        point.sum.map(value),
        value(point.count as f64),
        sample,
    );
}

/// The `_sum` (when there is one) and `_count` series of a histogram or summary point.
fn sum_and_count(
    name: &str,
    labels: &mut SeriesLabels,
    t: i64,
    sum: Option<f64>,
    count: f64,
    sample: &mut impl FnMut(&SeriesLabels, i64, f64),
) {
    if let Some(sum) = sum {
        labels.set("__name__", &format!("{name}_sum"));
        sample(labels, t, sum);
    }
    labels.set("__name__", &format!("{name}_count"));
    sample(labels, t, count);
}

fn summary_point(
    name: &str,
    point: &SummaryPoint,
    base: &ResourceLabels<'_>,
    sample: &mut impl FnMut(&SeriesLabels, i64, f64),
) {
    let t = millis(point.time_unix_nano);
    let stale = is_stale(point.flags);
    let value = |v: f64| if stale { STALE_NAN } else { v };
    let mut labels = point_labels(base, &point.attributes, name);
    for (quantile, v) in &point.quantile_values {
        labels.set("quantile", &format_g(*quantile, -1));
        sample(&labels, t, value(*v));
    }
    labels.set("quantile", "");
    sum_and_count(
        name,
        &mut labels,
        t,
        Some(value(point.sum)),
        value(point.count as f64),
        sample,
    );
}

fn resource_labels(attributes: &[KeyValue]) -> ResourceLabels<'_> {
    let text = |key: &str| super::find_attribute(attributes, key).map(Value::to_text);
    let job = match (text("service.namespace"), text("service.name")) {
        (Some(ns), Some(name)) if !ns.is_empty() => Some(Cow::Owned(format!("{ns}/{name}"))),
        (_, name) => name,
    };
    let instance = text("service.instance.id");
    [("instance", instance), ("job", job)]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.filter(|v| !v.is_empty())?)))
        .collect()
}

fn value_text(value: &Value) -> Cow<'_, str> {
    value.to_text()
}

fn valid_char(c: char, first: bool, colon: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (colon && c == ':') || (!first && c.is_ascii_digit())
}

/// A label name made valid: other characters become `_`, a leading digit gets a `_` before it.
pub fn label_name(key: &str) -> Cow<'_, str> {
    sanitize(key, false)
}

fn sanitize(text: &str, colon: bool) -> Cow<'_, str> {
    if text
        .chars()
        .enumerate()
        .all(|(i, c)| valid_char(c, i == 0, colon))
        && !text.is_empty()
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 1);
    for (i, c) in text.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        out.push(if valid_char(c, false, colon) { c } else { '_' });
    }
    if out.is_empty() {
        out.push('_');
    }
    Cow::Owned(out)
}

/// The series name of a metric: valid, with Prometheus's OTLP suffixes for native metrics.
pub fn metric_name(name: &str, unit: &str, native: bool, monotonic: bool, gauge: bool) -> String {
    let mut out = sanitize(name, true).into_owned();
    if !native {
        return out;
    }
    if let Some(suffix) = unit_suffix(unit, gauge) {
        if !out.ends_with(&format!("_{suffix}")) && !out.contains(&format!("_{suffix}_")) {
            out.push('_');
            out.push_str(&suffix);
        }
    }
    if monotonic && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

/// Prometheus's name for a UCUM unit (annotations in braces dropped; `x/y` as `x_per_y`).
fn unit_suffix(unit: &str, gauge: bool) -> Option<String> {
    let unit = strip_braces(unit);
    if unit.is_empty() {
        return None;
    }
    if unit == "1" {
        return gauge.then(|| "ratio".to_string());
    }
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m, Some(p)),
        None => (unit.as_str(), None),
    };
    let main = unit_word(main);
    let per = per.map(per_unit_word);
    let text = match (main.is_empty(), per) {
        (true, Some(p)) => format!("per_{p}"),
        (false, Some(p)) => format!("{main}_per_{p}"),
        (_, None) => main,
    };
    let text = sanitize(&text, false).into_owned();
    (!text.is_empty() && text != "_").then_some(text)
}

fn strip_braces(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

fn unit_word(unit: &str) -> String {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        other => other,
    }
    .to_string()
}

fn per_unit_word(unit: &str) -> String {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => return unit_word(other),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::flow::event::{Number, Origin};

    fn origin(scope: &str) -> Arc<Origin> {
        let mut origin = Origin::default();
        origin.scope.name = scope.into();
        origin.resource.attributes = vec![
            KeyValue::new("service.name", "checkout"),
            KeyValue::new("service.namespace", "shop"),
            KeyValue::new("service.instance.id", "pod-1"),
        ];
        Arc::new(origin)
    }

    fn collect(metric: &Metric) -> Vec<String> {
        let mut out = Vec::new();
        for_each_sample(metric, |labels, t, v| {
            let pairs: Vec<String> = labels.pairs().map(|(n, v)| format!("{n}={v}")).collect();
            let from_spans: Vec<String> = labels
                .pair_bytes()
                .map(|(n, v)| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(n),
                        String::from_utf8_lossy(v)
                    )
                })
                .collect();
            assert_eq!(from_spans, pairs, "the spans find the same pairs");
            out.push(format!(
                "{} @{t} {}",
                pairs.join(","),
                if v.to_bits() == STALE_NAN.to_bits() {
                    "stale".into()
                } else {
                    v.to_string()
                }
            ));
        });
        out
    }

    #[test]
    fn otlp_sums_gain_prometheus_suffixes_scraped_ones_keep_their_names() {
        let point = NumberPoint {
            attributes: vec![
                KeyValue::new("http.route", "/cart"),
                KeyValue::new("code", 200i64),
            ],
            time_unix_nano: 2_000_000_000,
            value: Some(Number::Double(5.0)),
            ..Default::default()
        };
        let metric = |scope: &str| Metric {
            origin: origin(scope),
            name: "http.server.duration".into(),
            description: String::new(),
            unit: "ms".into(),
            metadata: Vec::new(),
            data: Some(MetricData::Sum {
                points: vec![point.clone()],
                temporality: Temporality::Cumulative,
                monotonic: true,
            }),
        };
        assert_eq!(
            collect(&metric("io.opentelemetry.http")),
            ["__name__=http_server_duration_milliseconds_total,code=200,http_route=/cart,instance=pod-1,job=shop/checkout @2000 5"]
        );
        assert_eq!(
            collect(&metric(SCRAPE_SCOPE)),
            ["__name__=http_server_duration,code=200,http_route=/cart,instance=pod-1,job=shop/checkout @2000 5"]
        );
    }

    /// The labels of each point as setting them one by one in a map gives (the reference the
    /// cached layout must match: an empty value removes), and its key.
    fn reference_labels(metric: &Metric, point: &NumberPoint) -> (String, Vec<u8>) {
        let mut labels = std::collections::BTreeMap::new();
        let mut set = |name: &str, value: &str| {
            if value.is_empty() {
                labels.remove(name);
            } else {
                labels.insert(name.to_string(), value.to_string());
            }
        };
        set("job", "shop/checkout");
        set("instance", "pod-1");
        for kv in &point.attributes {
            set(&label_name(&kv.key), &value_text(&kv.value));
        }
        set("__name__", &metric.name);
        let pairs: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let mut key = Vec::new();
        for (n, v) in &labels {
            push_key_pair(&mut key, n, v);
        }
        (pairs.join(","), key)
    }

    #[test]
    fn points_with_changing_overriding_and_empty_attributes_get_prometheus_s_labels() {
        let point = |attributes: Vec<KeyValue>| NumberPoint {
            attributes,
            time_unix_nano: 1_000_000,
            value: Some(Number::Int(1)),
            ..Default::default()
        };
        let points = vec![
            point(vec![KeyValue::new("b", "1"), KeyValue::new("a", "2")]),
            point(vec![KeyValue::new("b", "3"), KeyValue::new("a", "")]),
            // An attribute named like a resource label replaces it; empty, it removes it.
            point(vec![
                KeyValue::new("job", "mine"),
                KeyValue::new("instance", ""),
            ]),
            // Keys that sanitise alike: the last one set wins, an empty last one removes.
            point(vec![
                KeyValue::new("k.x", "first"),
                KeyValue::new("k_x", "second"),
            ]),
            point(vec![
                KeyValue::new("k.x", "first"),
                KeyValue::new("k_x", ""),
            ]),
            point(vec![
                KeyValue::new("k_x", ""),
                KeyValue::new("k.x", "again"),
            ]),
            point(vec![KeyValue::new("b", "4"), KeyValue::new("a", "5")]),
            point(vec![
                KeyValue::new("__name__", "x"),
                KeyValue::new("zz", 7i64),
            ]),
            point(Vec::new()),
        ];
        let metric = Metric {
            origin: origin(SCRAPE_SCOPE),
            name: "m".into(),
            description: String::new(),
            unit: String::new(),
            metadata: Vec::new(),
            data: Some(MetricData::Gauge(points.clone())),
        };
        let mut got = Vec::new();
        for_each_sample(&metric, |labels, _, _| {
            let pairs: Vec<String> = labels.pairs().map(|(n, v)| format!("{n}={v}")).collect();
            got.push((pairs.join(","), labels.key().to_vec()));
        });
        let expected: Vec<_> = points
            .iter()
            .map(|p| reference_labels(&metric, p))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(expected[2].0, "__name__=m,job=mine");
        assert_eq!(expected[4].0, "__name__=m,instance=pod-1,job=shop/checkout");
        assert_eq!(
            expected[5].0,
            "__name__=m,instance=pod-1,job=shop/checkout,k_x=again"
        );
    }

    #[test]
    fn exponential_histograms_become_classic_buckets_at_their_bounds() {
        use crate::flow::event::{ExponentialBuckets, ExponentialHistogramPoint};
        // Scale 0: base 2. Negative bucket 0 holds [-2, -1), the zero bucket [0, 0], positive
        // buckets 0 and 1 hold (1, 2] and (2, 4].
        let metric = Metric {
            origin: origin(SCRAPE_SCOPE),
            name: "latency".into(),
            description: String::new(),
            unit: String::new(),
            metadata: Vec::new(),
            data: Some(MetricData::ExponentialHistogram {
                points: vec![ExponentialHistogramPoint {
                    time_unix_nano: 1_000_000,
                    count: 7,
                    sum: Some(3.0),
                    scale: 0,
                    zero_count: 1,
                    positive: Some(ExponentialBuckets {
                        offset: 0,
                        bucket_counts: vec![1, 2],
                    }),
                    negative: Some(ExponentialBuckets {
                        offset: 0,
                        bucket_counts: vec![3],
                    }),
                    ..Default::default()
                }],
                temporality: Temporality::Cumulative,
            }),
        };
        let got: Vec<String> = collect(&metric)
            .iter()
            .map(|s| {
                let (labels, rest) = s.split_once(' ').unwrap();
                let le = labels
                    .split(',')
                    .find(|l| l.starts_with("le="))
                    .unwrap_or("");
                let name = labels.split(',').next().unwrap();
                format!("{name} {le} {rest}")
            })
            .collect();
        assert_eq!(
            got,
            vec![
                "__name__=latency_bucket le=-1 @1 3",
                "__name__=latency_bucket le=0 @1 4",
                "__name__=latency_bucket le=2 @1 5",
                "__name__=latency_bucket le=4 @1 7",
                "__name__=latency_bucket le=+Inf @1 7",
                "__name__=latency_sum  @1 3",
                "__name__=latency_count  @1 7",
            ]
        );
        assert_eq!(
            family(&metric),
            Some(("latency".to_owned(), FamilyType::Histogram))
        );
    }

    #[test]
    fn histograms_and_summaries_expand_as_prometheus_exposes_them() {
        let metric = Metric {
            origin: origin(SCRAPE_SCOPE),
            name: "latency_seconds".into(),
            description: String::new(),
            unit: String::new(),
            metadata: Vec::new(),
            data: Some(MetricData::Histogram {
                points: vec![HistogramPoint {
                    time_unix_nano: 1_000_000,
                    count: 6,
                    sum: Some(2.5),
                    bucket_counts: vec![1, 2, 3],
                    explicit_bounds: vec![0.1, 1e6],
                    ..Default::default()
                }],
                temporality: Temporality::Cumulative,
            }),
        };
        let got = collect(&metric);
        assert_eq!(got.len(), 5);
        assert!(
            got[0].starts_with(
                "__name__=latency_seconds_bucket,instance=pod-1,job=shop/checkout,le=0.1 @1 1"
            ),
            "{got:?}"
        );
        assert!(got[1].contains("le=1e+06 @1 3"), "{got:?}");
        assert!(got[2].contains("le=+Inf @1 6"), "{got:?}");
        assert!(
            got[3].starts_with("__name__=latency_seconds_sum,") && got[3].ends_with(" 2.5"),
            "{got:?}"
        );
        assert!(
            got[4].starts_with("__name__=latency_seconds_count,") && got[4].ends_with(" 6"),
            "{got:?}"
        );

        let summary = Metric {
            data: Some(MetricData::Summary(vec![SummaryPoint {
                time_unix_nano: 1_000_000,
                count: 3,
                sum: 1.5,
                quantile_values: vec![(0.5, 0.2), (0.99, 0.9)],
                flags: FLAG_NO_RECORDED_VALUE,
                ..Default::default()
            }])),
            ..metric
        };
        let got = collect(&summary);
        assert_eq!(got.len(), 4);
        assert!(got[1].contains("quantile=0.99 @1 stale"), "{got:?}");
        assert!(
            got.iter().all(|s| s.ends_with("stale")),
            "a point without a recorded value is stale in every series"
        );
    }

    #[test]
    fn units_and_names_as_prometheus_translates_them() {
        assert_eq!(
            metric_name("system.memory.usage", "By", true, false, true),
            "system_memory_usage_bytes"
        );
        assert_eq!(
            metric_name("cpu.utilization", "1", true, false, true),
            "cpu_utilization_ratio"
        );
        assert_eq!(
            metric_name("requests", "{request}", true, true, false),
            "requests_total"
        );
        assert_eq!(
            metric_name("net.io", "By/s", true, false, true),
            "net_io_bytes_per_second"
        );
        assert_eq!(metric_name("up", "", false, false, true), "up");
        assert_eq!(label_name("k8s.pod.name"), "k8s_pod_name");
        assert_eq!(label_name("9lives"), "_9lives");
    }
}
