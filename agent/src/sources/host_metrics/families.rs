//! What the collectors produce: Prometheus-style families (a name, help, counter or gauge, and
//! points with labels), turned into OTLP metrics the way `prometheus_scrape` turns node_exporter's
//! (counters are monotonic cumulative sums that started at boot, gauges are gauges), so a host's
//! metrics read the same from either.

use std::sync::Arc;

use sextant_pipeline::flow::event::{
    KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Temporality,
};

/// Labels of a point: names are static, values not.
pub type Labels = Vec<(&'static str, String)>;

pub struct Family {
    pub name: String,
    pub help: String,
    pub counter: bool,
    pub points: Vec<(Labels, f64)>,
}

/// The families of one collection.
#[derive(Default)]
pub struct Families {
    pub families: Vec<Family>,
}

impl Families {
    fn family(&mut self, name: &str, help: &str, counter: bool) -> &mut Family {
        let found = self.families.iter().position(|f| f.name == name);
        let i = match found {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    help: help.to_string(),
                    counter,
                    points: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    pub fn gauge(&mut self, name: &str, help: &str, labels: Labels, value: f64) {
        self.family(name, help, false).points.push((labels, value));
    }

    pub fn counter(&mut self, name: &str, help: &str, labels: Labels, value: f64) {
        self.family(name, help, true).points.push((labels, value));
    }

    /// OTLP metrics at `time_ns`; counters started at `boot_ns`.
    pub fn into_metrics(self, origin: &Arc<Origin>, time_ns: u64, boot_ns: u64) -> Vec<Metric> {
        self.families
            .into_iter()
            .map(|f| {
                let points: Vec<NumberPoint> = f
                    .points
                    .into_iter()
                    .map(|(labels, value)| NumberPoint {
                        attributes: labels
                            .into_iter()
                            .map(|(k, v)| KeyValue::new(k, v))
                            .collect(),
                        start_time_unix_nano: if f.counter { boot_ns } else { 0 },
                        time_unix_nano: time_ns,
                        value: Some(Number::Double(value)),
                        ..Default::default()
                    })
                    .collect();
                let data = if f.counter {
                    MetricData::Sum {
                        points,
                        temporality: Temporality::Cumulative,
                        monotonic: true,
                    }
                } else {
                    MetricData::Gauge(points)
                };
                Metric {
                    origin: origin.clone(),
                    name: f.name,
                    description: f.help,
                    unit: String::new(),
                    metadata: Vec::new(),
                    data: Some(data),
                }
            })
            .collect()
    }
}
