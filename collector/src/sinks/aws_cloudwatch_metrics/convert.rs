//! Metrics to datums: the rules that make OTLP and Prometheus metrics mean the same thing in
//! CloudWatch.
//!
//! - Gauges and non-monotonic sums publish their value.
//! - Delta sums publish their value; cumulative monotonic sums publish their increase per series
//!   ([`super::deltas`]), resets included.
//! - Histograms (explicit and exponential) publish the counts of the interval as values with
//!   counts ([`super::histogram`]), at most 150 pairs a datum, or as a statistic set (count, sum,
//!   min, max) if so configured. Summaries publish a statistic set of the interval's count and sum
//!   (min and max from the 0 and 1 quantiles when present, else the mean).
//! - Values are converted to the CloudWatch unit ([`super::units`]). NaN and infinities are
//!   dropped, values beyond ±2^360 are dropped, values nearer zero than CloudWatch resolves
//!   become 0; points older than two weeks or more than two hours ahead are dropped. Each drop is
//!   counted by reason.
//! - Every point becomes one datum per dimension set it has ([`super::dimensions`]).

use std::hash::{BuildHasher, Hasher};

use sextant_pipeline::flow::event::{
    KeyValue, Metric, MetricData, Temporality, Value, FLAG_NO_RECORDED_VALUE,
};

use super::config::HistogramMode;
use super::datum::{clean_name, Datum, DatumValue, Text};
use super::deltas::{Delta, DeltaTracker};
use super::dimensions::{DimensionStats, Plan};
use super::histogram::{
    bounds_layout, explicit_pairs, exponential_layout, exponential_pairs, Accumulated, Run,
};
use super::limits::{
    MAX_AGE_MS, MAX_FUTURE_MS, MAX_MAGNITUDE, MAX_VALUES_PER_DATUM, MIN_MAGNITUDE,
};
use super::units::{self, Unit};

/// Points not published, by reason, and names that had to be fixed.
#[derive(Debug, Default, PartialEq)]
pub struct ConvertStats {
    pub non_finite: u64,
    pub out_of_range: u64,
    pub too_old: u64,
    pub too_new: u64,
    pub out_of_order: u64,
    pub series_limit: u64,
    pub invalid_name: u64,
    pub names_fixed: u64,
    pub dimensions_over_limit: u64,
}

impl ConvertStats {
    /// (reason, count) of the points dropped.
    pub fn dropped(&self) -> [(&'static str, u64); 7] {
        [
            ("non_finite", self.non_finite),
            ("out_of_range", self.out_of_range),
            ("too_old", self.too_old),
            ("too_new", self.too_new),
            ("out_of_order", self.out_of_order),
            ("series_limit", self.series_limit),
            ("invalid_name", self.invalid_name),
        ]
    }
}

pub struct Converter {
    plan: Plan,
    histograms: HistogramMode,
    numbers: DeltaTracker<f64>,
    accumulations: DeltaTracker<Accumulated>,
}

/// What one point publishes before units, checks and dimensions.
enum Publish {
    Value(f64),
    /// (value, count) pairs, and the observations' own sum.
    Pairs {
        pairs: Vec<(f64, f64)>,
        sum: f64,
    },
    Statistics {
        count: f64,
        sum: f64,
        min: f64,
        max: f64,
    },
}

/// What an explicit and an exponential histogram point share.
struct HistogramPoint<'a> {
    attributes: &'a [KeyValue],
    start_ns: u64,
    time_ns: u64,
    temporality: Temporality,
    min_max: (Option<f64>, Option<f64>),
}

/// The fixed parts of the datums of one metric.
struct MetricContext<'a> {
    name: Text,
    unit: Unit,
    resource: &'a [KeyValue],
    series_seed: u64,
    now_ms: i64,
}

fn hash_value(h: &mut impl Hasher, v: &Value) {
    match v {
        Value::Empty => h.write_u8(0),
        Value::Str(s) => {
            h.write_u8(1);
            h.write(s.as_bytes());
        }
        Value::Bool(b) => h.write_u8(if *b { 2 } else { 3 }),
        Value::Int(i) => {
            h.write_u8(4);
            h.write_i64(*i);
        }
        Value::Double(d) => {
            h.write_u8(5);
            h.write_u64(d.to_bits());
        }
        Value::Bytes(b) => {
            h.write_u8(6);
            h.write(b);
        }
        Value::Array(a) => {
            h.write_u8(7);
            a.iter().for_each(|v| hash_value(h, v));
        }
        Value::Map(m) => {
            h.write_u8(8);
            hash_attributes(h, m);
        }
    }
}

fn hash_attributes(h: &mut impl Hasher, attributes: &[KeyValue]) {
    for kv in attributes {
        h.write(kv.key.as_bytes());
        h.write_u8(0xff);
        hash_value(h, &kv.value);
    }
    h.write_usize(attributes.len());
}

fn hasher() -> impl Hasher {
    foldhash::fast::FixedState::with_seed(0x05e4_7a47).build_hasher()
}

impl Converter {
    pub fn new(
        plan: Plan,
        histograms: HistogramMode,
        max_series: usize,
        series_ttl_ms: i64,
        started_ns: u64,
    ) -> Self {
        Self {
            plan,
            histograms,
            numbers: DeltaTracker::new(max_series, series_ttl_ms, started_ns),
            accumulations: DeltaTracker::new(max_series, series_ttl_ms, started_ns),
        }
    }

    /// Series whose cumulative values are tracked.
    pub fn tracked_series(&self) -> usize {
        self.numbers.len() + self.accumulations.len()
    }

    /// Appends the datums of `metrics` to `out`.
    pub fn convert(
        &mut self,
        metrics: &[Metric],
        now_ms: i64,
        out: &mut Vec<Datum>,
    ) -> ConvertStats {
        let mut stats = ConvertStats::default();
        for metric in metrics {
            let Some(data) = &metric.data else { continue };
            let Some(name) = clean_name(&metric.name) else {
                stats.invalid_name += data.point_count() as u64;
                continue;
            };
            if name.fixed {
                stats.names_fixed += 1;
            }
            let mut seed = hasher();
            hash_attributes(&mut seed, &metric.origin.resource.attributes);
            seed.write(metric.origin.scope.name.as_bytes());
            seed.write_u8(0xfe);
            seed.write(metric.name.as_bytes());
            let cx = MetricContext {
                name: Text::from(name.text.as_ref()),
                unit: units::map(&metric.unit, &metric.name),
                resource: &metric.origin.resource.attributes,
                series_seed: seed.finish(),
                now_ms,
            };
            self.convert_data(&cx, data, &mut stats, out);
        }
        stats
    }

    fn convert_data(
        &mut self,
        cx: &MetricContext<'_>,
        data: &MetricData,
        stats: &mut ConvertStats,
        out: &mut Vec<Datum>,
    ) {
        match data {
            MetricData::Gauge(points) => {
                for p in points {
                    let Some(v) = p.value else { continue };
                    self.emit(
                        cx,
                        &p.attributes,
                        p.time_unix_nano,
                        Publish::Value(v.as_f64()),
                        stats,
                        out,
                    );
                }
            }
            MetricData::Sum {
                points,
                temporality,
                monotonic,
            } => {
                for p in points {
                    let Some(v) = p.value else { continue };
                    let v = v.as_f64();
                    let publish = if *temporality == Temporality::Cumulative && *monotonic {
                        let key = series_key(cx, &p.attributes);
                        match self.numbers.delta(
                            key,
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            v,
                            cx.now_ms,
                        ) {
                            Delta::Value(d) => d,
                            other => {
                                count_unpublished(&other, stats);
                                continue;
                            }
                        }
                    } else {
                        v
                    };
                    self.emit(
                        cx,
                        &p.attributes,
                        p.time_unix_nano,
                        Publish::Value(publish),
                        stats,
                        out,
                    );
                }
            }
            MetricData::Histogram {
                points,
                temporality,
            } => {
                for p in points {
                    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                        continue;
                    }
                    let acc = Accumulated {
                        layout: bounds_layout(&p.explicit_bounds),
                        count: p.count,
                        sum: p.sum.unwrap_or(0.0),
                        zero: 0,
                        positive: Run {
                            offset: 0,
                            counts: p.bucket_counts.clone(),
                        },
                        negative: Run::default(),
                    };
                    let point = HistogramPoint {
                        attributes: &p.attributes,
                        start_ns: p.start_time_unix_nano,
                        time_ns: p.time_unix_nano,
                        temporality: *temporality,
                        min_max: (p.min, p.max),
                    };
                    self.histogram_point(cx, &point, acc, stats, out, |acc, pairs| {
                        explicit_pairs(&acc.positive.counts, &p.explicit_bounds, pairs)
                    });
                }
            }
            MetricData::ExponentialHistogram {
                points,
                temporality,
            } => {
                for p in points {
                    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                        continue;
                    }
                    let run = |b: &Option<sextant_pipeline::flow::event::ExponentialBuckets>| {
                        b.as_ref().map_or_else(Run::default, |b| Run {
                            offset: b.offset,
                            counts: b.bucket_counts.clone(),
                        })
                    };
                    let acc = Accumulated {
                        layout: exponential_layout(p.scale, p.zero_threshold),
                        count: p.count,
                        sum: p.sum.unwrap_or(0.0),
                        zero: p.zero_count,
                        positive: run(&p.positive),
                        negative: run(&p.negative),
                    };
                    let point = HistogramPoint {
                        attributes: &p.attributes,
                        start_ns: p.start_time_unix_nano,
                        time_ns: p.time_unix_nano,
                        temporality: *temporality,
                        min_max: (p.min, p.max),
                    };
                    self.histogram_point(cx, &point, acc, stats, out, |acc, pairs| {
                        exponential_pairs(acc, p.scale, pairs)
                    });
                }
            }
            MetricData::Summary(points) => {
                for p in points {
                    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
                        continue;
                    }
                    let acc = Accumulated {
                        layout: 3,
                        count: p.count,
                        sum: p.sum,
                        ..Default::default()
                    };
                    let Some(acc) = self.interval(
                        cx,
                        &p.attributes,
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        Temporality::Cumulative,
                        acc,
                        stats,
                    ) else {
                        continue;
                    };
                    if acc.count == 0 {
                        continue;
                    }
                    let count = acc.count as f64;
                    let mean = acc.sum / count;
                    let quantile = |q: f64| {
                        p.quantile_values
                            .iter()
                            .find(|(at, _)| *at == q)
                            .map(|(_, v)| *v)
                    };
                    let min = quantile(0.0).unwrap_or(mean).min(mean);
                    let max = quantile(1.0).unwrap_or(mean).max(mean);
                    self.emit(
                        cx,
                        &p.attributes,
                        p.time_unix_nano,
                        Publish::Statistics {
                            count,
                            sum: acc.sum,
                            min,
                            max,
                        },
                        stats,
                        out,
                    );
                }
            }
        }
    }

    /// Publishes one explicit or exponential histogram point: its interval's buckets (`pairs`
    /// lists them as value, count) as values or a statistic set.
    fn histogram_point(
        &mut self,
        cx: &MetricContext<'_>,
        point: &HistogramPoint<'_>,
        acc: Accumulated,
        stats: &mut ConvertStats,
        out: &mut Vec<Datum>,
        pairs: impl FnOnce(&Accumulated, &mut Vec<(f64, f64)>),
    ) {
        let Some(acc) = self.interval(
            cx,
            point.attributes,
            point.start_ns,
            point.time_ns,
            point.temporality,
            acc,
            stats,
        ) else {
            return;
        };
        let mut buckets = Vec::new();
        pairs(&acc, &mut buckets);
        // A point's min and max are of its own interval only when it is a delta.
        let min_max = if point.temporality == Temporality::Cumulative {
            (None, None)
        } else {
            point.min_max
        };
        let publish = self.histogram(buckets, acc, min_max);
        self.emit(cx, point.attributes, point.time_ns, publish, stats, out);
    }

    /// The interval's accumulation of a histogram-like point: itself when delta, else the
    /// increase since the series' last point (`None`: nothing to publish, counted).
    #[allow(clippy::too_many_arguments)]
    fn interval(
        &mut self,
        cx: &MetricContext<'_>,
        attributes: &[KeyValue],
        start_ns: u64,
        time_ns: u64,
        temporality: Temporality,
        acc: Accumulated,
        stats: &mut ConvertStats,
    ) -> Option<Accumulated> {
        if temporality != Temporality::Cumulative {
            return Some(acc);
        }
        let key = series_key(cx, attributes);
        match self
            .accumulations
            .delta(key, start_ns, time_ns, acc, cx.now_ms)
        {
            Delta::Value(d) => Some(d),
            other => {
                count_unpublished(&other, stats);
                None
            }
        }
    }

    fn histogram(
        &self,
        mut pairs: Vec<(f64, f64)>,
        acc: Accumulated,
        (min, max): (Option<f64>, Option<f64>),
    ) -> Publish {
        let count = acc.count as f64;
        let mean = if acc.count > 0 { acc.sum / count } else { 0.0 };
        if pairs.is_empty() && acc.count > 0 {
            pairs.push((mean, count));
        }
        match self.histograms {
            HistogramMode::Values => Publish::Pairs {
                pairs,
                sum: acc.sum,
            },
            HistogramMode::StatisticSet => {
                let lowest = pairs.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
                let highest = pairs.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
                Publish::Statistics {
                    count,
                    sum: acc.sum,
                    min: min.unwrap_or(lowest).min(mean),
                    max: max.unwrap_or(highest).max(mean),
                }
            }
        }
    }

    fn emit(
        &self,
        cx: &MetricContext<'_>,
        attributes: &[KeyValue],
        time_ns: u64,
        publish: Publish,
        stats: &mut ConvertStats,
        out: &mut Vec<Datum>,
    ) {
        let timestamp_ms = if time_ns == 0 {
            cx.now_ms
        } else {
            (time_ns / 1_000_000) as i64
        };
        if timestamp_ms < cx.now_ms - MAX_AGE_MS {
            stats.too_old += 1;
            return;
        }
        if timestamp_ms > cx.now_ms + MAX_FUTURE_MS {
            stats.too_new += 1;
            return;
        }
        let scale = cx.unit.scale;
        let values: Vec<DatumValue> = match publish {
            Publish::Value(v) => match checked(v * scale, stats) {
                Some(v) => vec![DatumValue::Single(v)],
                None => return,
            },
            Publish::Pairs { pairs, sum } => {
                if pairs.is_empty() {
                    return;
                }
                let Some(sum) = checked(sum * scale, stats) else {
                    return;
                };
                let mut checked_pairs = Vec::with_capacity(pairs.len());
                for (v, c) in pairs {
                    match checked(v * scale, stats) {
                        Some(v) => checked_pairs.push((v, c)),
                        None => return,
                    }
                }
                checked_pairs
                    .chunks(MAX_VALUES_PER_DATUM)
                    .enumerate()
                    .map(|(i, chunk)| DatumValue::Distribution {
                        values: chunk.iter().map(|p| p.0).collect(),
                        counts: chunk.iter().map(|p| p.1).collect(),
                        sum: (i == 0).then_some(sum),
                    })
                    .collect()
            }
            Publish::Statistics {
                count,
                sum,
                min,
                max,
            } => {
                if count <= 0.0 {
                    return;
                }
                let (Some(sum), Some(min), Some(max)) = (
                    checked(sum * scale, stats),
                    checked(min * scale, stats),
                    checked(max * scale, stats),
                ) else {
                    return;
                };
                vec![DatumValue::Statistics {
                    count,
                    sum,
                    min,
                    max,
                }]
            }
        };
        let mut dimension_stats = DimensionStats::default();
        let sets = self
            .plan
            .sets(attributes, cx.resource, &mut dimension_stats);
        stats.names_fixed += dimension_stats.fixed;
        stats.dimensions_over_limit += dimension_stats.over_limit;
        for dimensions in sets {
            for value in &values {
                out.push(Datum {
                    name: cx.name.clone(),
                    dimensions: dimensions.clone(),
                    timestamp_ms,
                    unit: cx.unit.name,
                    value: value.clone(),
                });
            }
        }
    }
}

fn series_key(cx: &MetricContext<'_>, attributes: &[KeyValue]) -> u64 {
    let mut h = hasher();
    h.write_u64(cx.series_seed);
    hash_attributes(&mut h, attributes);
    h.finish()
}

fn count_unpublished<T>(d: &Delta<T>, stats: &mut ConvertStats) {
    match d {
        Delta::OutOfOrder => stats.out_of_order += 1,
        Delta::Untracked => stats.series_limit += 1,
        Delta::Baseline | Delta::Value(_) => {}
    }
}

/// The value CloudWatch will take, or `None` (counted) if it takes none.
fn checked(v: f64, stats: &mut ConvertStats) -> Option<f64> {
    if !v.is_finite() {
        stats.non_finite += 1;
        return None;
    }
    if v.abs() > MAX_MAGNITUDE {
        stats.out_of_range += 1;
        return None;
    }
    Some(if v != 0.0 && v.abs() < MIN_MAGNITUDE {
        0.0
    } else {
        v
    })
}
