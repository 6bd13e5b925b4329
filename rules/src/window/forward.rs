//! What a collector forwards to the rulers: of each metric, the points with a Prometheus
//! series some rule's selector can match — the window store's own filter ([`SelectorFilter`]),
//! so a ruler receives exactly what its store would keep. A point is kept whole when any of
//! its series is admitted (a histogram's `_bucket`, `_sum` or `_count`); metrics no selector
//! names are dropped at the cost of a name test.

use sextant_pipeline::flow::event::prometheus::for_each_sample;
use sextant_pipeline::flow::event::{Metric, MetricData};

use super::SelectorFilter;

/// How many points were kept and left out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub kept: u64,
    pub left_out: u64,
}

/// The metrics (with only their admitted points) the rules can read.
pub fn select(
    filter: &SelectorFilter,
    metrics: Vec<Metric>,
    selected: &mut Selected,
) -> Vec<Metric> {
    let mut out = Vec::new();
    for metric in metrics {
        let points = metric.data.as_ref().map_or(0, MetricData::point_count) as u64;
        if !may_admit(filter, &metric) {
            selected.left_out += points;
            continue;
        }
        let kept = retain_points(metric, |probe| {
            let mut admitted = false;
            for_each_sample(probe, |labels, _, _| admitted |= filter.admits(labels));
            admitted
        });
        let n = kept.data.as_ref().map_or(0, MetricData::point_count) as u64;
        selected.kept += n;
        selected.left_out += points - n;
        if n > 0 {
            out.push(kept);
        }
    }
    out
}

/// A cheap first test: whether any series name the metric maps to can be admitted.
fn may_admit(filter: &SelectorFilter, metric: &Metric) -> bool {
    let Some((name, _)) = sextant_pipeline::flow::event::prometheus::family(metric) else {
        return false;
    };
    ["", "_total", "_bucket", "_sum", "_count"]
        .iter()
        .any(|suffix| filter.may_admit_name(&format!("{name}{suffix}")))
}

/// Moves each point into `probe` alone, asks `keep`, and keeps the accepted ones (no copies).
fn keep_points<P>(
    points: Vec<P>,
    probe: &mut Metric,
    wrap: impl Fn(Vec<P>) -> MetricData,
    unwrap: impl Fn(MetricData) -> Vec<P>,
    keep: &impl Fn(&Metric) -> bool,
) -> Vec<P> {
    let mut kept = Vec::with_capacity(points.len());
    for point in points {
        probe.data = Some(wrap(vec![point]));
        if keep(probe) {
            kept.extend(probe.data.take().map(&unwrap).unwrap_or_default());
        }
    }
    probe.data = None;
    kept
}

/// `metric` with the points `keep` accepts; `keep` sees the metric with one point at a time.
fn retain_points(mut metric: Metric, keep: impl Fn(&Metric) -> bool) -> Metric {
    let mut probe = Metric {
        origin: metric.origin.clone(),
        name: metric.name.clone(),
        description: String::new(),
        unit: metric.unit.clone(),
        metadata: Vec::new(),
        data: None,
    };
    let probe = &mut probe;
    metric.data = metric.data.take().map(|data| match data {
        MetricData::Gauge(points) => MetricData::Gauge(keep_points(
            points,
            probe,
            MetricData::Gauge,
            |d| match d {
                MetricData::Gauge(p) => p,
                _ => Vec::new(),
            },
            &keep,
        )),
        MetricData::Sum {
            points,
            temporality,
            monotonic,
        } => MetricData::Sum {
            points: keep_points(
                points,
                probe,
                |points| MetricData::Sum {
                    points,
                    temporality,
                    monotonic,
                },
                |d| match d {
                    MetricData::Sum { points, .. } => points,
                    _ => Vec::new(),
                },
                &keep,
            ),
            temporality,
            monotonic,
        },
        MetricData::Histogram {
            points,
            temporality,
        } => MetricData::Histogram {
            points: keep_points(
                points,
                probe,
                |points| MetricData::Histogram {
                    points,
                    temporality,
                },
                |d| match d {
                    MetricData::Histogram { points, .. } => points,
                    _ => Vec::new(),
                },
                &keep,
            ),
            temporality,
        },
        MetricData::ExponentialHistogram {
            points,
            temporality,
        } => MetricData::ExponentialHistogram {
            points: keep_points(
                points,
                probe,
                |points| MetricData::ExponentialHistogram {
                    points,
                    temporality,
                },
                |d| match d {
                    MetricData::ExponentialHistogram { points, .. } => points,
                    _ => Vec::new(),
                },
                &keep,
            ),
            temporality,
        },
        MetricData::Summary(points) => MetricData::Summary(keep_points(
            points,
            probe,
            MetricData::Summary,
            |d| match d {
                MetricData::Summary(p) => p,
                _ => Vec::new(),
            },
            &keep,
        )),
    });
    metric
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sextant_pipeline::flow::event::{
        KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Resource, Scope,
    };

    use super::*;
    use crate::promql::parse;

    fn gauge(name: &str, rooms: &[&str]) -> Metric {
        Metric {
            origin: Arc::new(Origin {
                resource: Resource {
                    attributes: vec![KeyValue::new("service.name", "rooms")],
                    ..Default::default()
                },
                scope: Scope {
                    name: "sextant/prometheus_scrape".into(),
                    ..Default::default()
                },
            }),
            name: name.into(),
            description: String::new(),
            unit: String::new(),
            metadata: Vec::new(),
            data: Some(MetricData::Gauge(
                rooms
                    .iter()
                    .map(|room| NumberPoint {
                        attributes: vec![KeyValue::new("room", *room)],
                        start_time_unix_nano: 0,
                        time_unix_nano: 1_000_000_000,
                        value: Some(Number::Double(1.0)),
                        exemplars: Vec::new(),
                        flags: 0,
                    })
                    .collect(),
            )),
        }
    }

    #[test]
    fn only_the_points_a_selector_can_match_are_forwarded() {
        let exprs = [
            parse(r#"temperature{room=~"lab|server"} > 40"#).unwrap(),
            parse("sum by (job) (rate(requests_total[5m]))").unwrap(),
        ];
        let filter = SelectorFilter::new(exprs.iter());
        let mut selected = Selected::default();
        let out = select(
            &filter,
            vec![
                gauge("temperature", &["lab", "attic", "server"]),
                gauge("humidity", &["lab"]),
                gauge("requests_total", &["x"]),
            ],
            &mut selected,
        );
        let names: Vec<(&str, usize)> = out
            .iter()
            .map(|m| (m.name.as_str(), m.data.as_ref().unwrap().point_count()))
            .collect();
        assert_eq!(names, [("temperature", 2), ("requests_total", 1)]);
        let MetricData::Gauge(points) = out[0].data.as_ref().unwrap() else {
            panic!()
        };
        let rooms: Vec<String> = points
            .iter()
            .map(|p| p.attributes[0].value.as_str().unwrap().to_string())
            .collect();
        assert_eq!(rooms, ["lab", "server"]);
        assert_eq!(
            selected,
            Selected {
                kept: 3,
                left_out: 2
            }
        );
    }
}
