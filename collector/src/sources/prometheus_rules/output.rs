//! Rule results as metrics for the sinks: one gauge point per series, `job`/`instance` as the
//! resource's `service.name`/`service.instance.id` and the other labels as attributes — the
//! inverse of the shared Prometheus mapping, so an exporter shows the series as recorded.
//! Stale markers become points flagged "no recorded value".

use std::collections::HashMap;
use std::sync::Arc;

use sextant_pipeline::flow::event::prometheus::RULES_SCOPE;
use sextant_pipeline::flow::event::{
    KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Resource, Scope,
    FLAG_NO_RECORDED_VALUE,
};
use sextant_rules::labels::{Labels, METRIC_NAME};
use sextant_rules::promql::value::is_stale_marker;

pub(super) fn to_metrics(samples: Vec<(Labels, f64)>, t_ms: i64) -> Vec<Metric> {
    let mut origins: HashMap<(String, String), Arc<Origin>> = HashMap::new();
    let time_unix_nano = u64::try_from(t_ms).unwrap_or(0).saturating_mul(1_000_000);
    samples
        .into_iter()
        .map(|(labels, v)| {
            let key = (
                labels.get("job").to_string(),
                labels.get("instance").to_string(),
            );
            let origin = origins
                .entry(key.clone())
                .or_insert_with(|| origin_for(&key.0, &key.1))
                .clone();
            let attributes = labels
                .iter()
                .filter(|l| !matches!(&*l.name, METRIC_NAME | "job" | "instance"))
                .map(|l| KeyValue::new(&*l.name, &*l.value))
                .collect();
            let stale = is_stale_marker(v);
            let point = NumberPoint {
                attributes,
                start_time_unix_nano: 0,
                time_unix_nano,
                value: (!stale).then_some(Number::Double(v)),
                exemplars: Vec::new(),
                flags: if stale { FLAG_NO_RECORDED_VALUE } else { 0 },
            };
            Metric {
                origin,
                name: labels.metric_name().to_string(),
                description: String::new(),
                unit: String::new(),
                metadata: Vec::new(),
                data: Some(MetricData::Gauge(vec![point])),
            }
        })
        .collect()
}

fn origin_for(job: &str, instance: &str) -> Arc<Origin> {
    let mut attributes = Vec::new();
    if !job.is_empty() {
        attributes.push(KeyValue::new("service.name", job));
    }
    if !instance.is_empty() {
        attributes.push(KeyValue::new("service.instance.id", instance));
    }
    Arc::new(Origin {
        resource: Resource {
            attributes,
            ..Default::default()
        },
        scope: Scope {
            name: RULES_SCOPE.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        },
    })
}
