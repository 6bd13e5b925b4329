//! The collector's sinks: AWS backends.

pub(crate) mod aws;
pub mod aws_cloudwatch_logs;
pub mod aws_cloudwatch_metrics;
pub mod aws_xray;
