//! Sextant's alerting core: a PromQL engine (`promql`), the test-file runner that checks it
//! against Prometheus's own format (`promqltest`), and — as they land — the window store and
//! Prometheus rule files the collector evaluates over the metrics that pass through it.

pub mod duration;
pub mod evaluator;
pub mod labels;
pub mod notify;
pub mod promql;
pub mod promqltest;
pub mod rule_files;
pub mod series_notation;
pub mod template;
pub mod unit_test;
pub mod window;
