//! The only place that calls CloudWatch's PutMetricData. The SDK gzips bodies over 10 kB (the
//! API accepts `Content-Encoding: gzip`).

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use aws_sdk_cloudwatch::Client;

use super::datum::{Datum, DatumValue};
use super::request_builder::PutRequest;
use crate::sinks::aws::{sdk_config, AwsError, AwsSettings};

pub struct CloudWatchMetricsService {
    client: Client,
    namespace: String,
    storage_resolution: i32,
}

impl CloudWatchMetricsService {
    pub async fn new(aws: &AwsSettings, namespace: String, storage_resolution: i32) -> Self {
        let config = sdk_config(aws).await;
        Self {
            client: Client::new(&config),
            namespace,
            storage_resolution,
        }
    }

    /// A cheap read (ListMetrics of its namespace): credentials, endpoint and permission.
    pub async fn healthcheck(&self) -> Result<(), AwsError> {
        self.client
            .list_metrics()
            .namespace(&self.namespace)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk(&e))
    }

    pub async fn put(&self, request: &PutRequest) -> Result<(), AwsError> {
        let datums = request
            .datums
            .iter()
            .map(|d| sdk_datum(d, self.storage_resolution))
            .collect();
        self.client
            .put_metric_data()
            .namespace(&self.namespace)
            .set_metric_data(Some(datums))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk(&e))
    }
}

/// A datum as the SDK's type.
pub fn sdk_datum(d: &Datum, storage_resolution: i32) -> MetricDatum {
    let dimensions = d
        .dimensions
        .iter()
        .map(|(name, value)| {
            Dimension::builder()
                .name(name.as_str())
                .value(value.as_str())
                .build()
        })
        .collect();
    let builder = MetricDatum::builder()
        .metric_name(d.name.as_str())
        .set_dimensions(Some(dimensions))
        .timestamp(DateTime::from_millis(d.timestamp_ms))
        .unit(StandardUnit::from(d.unit))
        .storage_resolution(storage_resolution);
    match &d.value {
        DatumValue::Single(v) => builder.value(*v),
        DatumValue::Distribution { values, counts, .. } => builder
            .set_values(Some(values.clone()))
            .set_counts(Some(counts.clone())),
        DatumValue::Statistics {
            count,
            sum,
            min,
            max,
        } => builder.statistic_values(
            StatisticSet::builder()
                .sample_count(*count)
                .sum(*sum)
                .minimum(*min)
                .maximum(*max)
                .build(),
        ),
    }
    .build()
}
