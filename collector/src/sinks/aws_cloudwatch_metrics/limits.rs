//! What CloudWatch enforces and the test server does not (PutMetricData and Embedded Metric
//! Format, as documented by AWS); every request and document Sextant builds stays within these.

/// Metric data entries (datums) per PutMetricData request.
pub const MAX_DATUMS_PER_REQUEST: usize = 1000;
/// Distinct values (with their counts) in one datum.
pub const MAX_VALUES_PER_DATUM: usize = 150;
/// Dimensions of one metric.
pub const MAX_DIMENSIONS: usize = 30;
/// A PutMetricData request's size. AWS states 1 MB for the (possibly gzipped) POST body; Sextant
/// holds the uncompressed form body to it, so it is met whatever the compression does.
pub const MAX_REQUEST_BYTES: usize = 1_000_000;
/// Characters of a metric or dimension name.
pub const MAX_NAME_LEN: usize = 255;
/// Characters of a dimension value.
pub const MAX_DIMENSION_VALUE_LEN: usize = 1024;
/// The oldest a datapoint may be (two weeks).
pub const MAX_AGE_MS: i64 = 14 * 24 * 3600 * 1000;
/// The furthest in the future a datapoint may be (two hours).
pub const MAX_FUTURE_MS: i64 = 2 * 3600 * 1000;
/// Values beyond ±2^360 are refused.
pub const MAX_MAGNITUDE: f64 = 2.348_542_582_773_833_2e108;
/// Non-zero values closer to zero than this are refused; Sextant publishes them as 0.
pub const MIN_MAGNITUDE: f64 = 8.515_920e-109;
/// Metrics in one EMF document (CloudWatch silently ignores the ones past it).
pub const EMF_MAX_METRICS: usize = 100;
/// Values of one metric in one EMF document.
pub const EMF_MAX_VALUES: usize = 100;
