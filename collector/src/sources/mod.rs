//! Sources only the collector has.

pub mod prometheus_rules;
