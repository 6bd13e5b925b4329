//! `sextant-collector`: what only the collector pool has — the AWS sinks and rule evaluation
//! (`prometheus_rules`).
//! [`config`] lists the collector's components in closed enums.

#![forbid(unsafe_code)]

pub mod config;
pub mod sinks;
pub mod sources;
