//! The collector's sinks: AWS backends (CloudWatch Logs and metrics, X-Ray, SNS), OpenSearch, the Prometheus exporter and remote write; [`http_auth`] is the
//! `auth:` of the HTTP ones.

pub(crate) mod aws;
pub use aws::sigv4_check;
pub mod aws_cloudwatch_logs;
pub mod aws_cloudwatch_metrics;
pub mod aws_sns;
pub mod aws_xray;
pub mod http_auth;
pub mod opensearch;
pub mod prometheus_exporter;
pub mod prometheus_remote_write;
