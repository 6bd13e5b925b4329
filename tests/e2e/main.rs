//! End-to-end tests against real processes and servers (moto, the OpenTelemetry and X-Ray
//! SDKs), one module per area, in one test binary: each binary would link tokio, hyper and three
//! AWS SDKs again. `common` holds what they share (ports, processes, moto, the fault proxy).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

mod common;

mod alert_notifications;
mod alertmanager_comparison;
mod cli;
mod cloudwatch_logs_faults;
mod cloudwatch_logs_slice;
mod cloudwatch_metrics;
mod crash_recovery;
mod deploy_assets;
mod disk_buffer_across_the_hop;
mod exposition_conformance;
mod host_metrics;
mod memory_limit;
mod opensearch;
mod otlp_grpc;
mod otlp_hop_faults;
mod otlp_receiver_limits;
mod otlp_sdk_senders;
mod otlp_sequential_sender;
mod prometheus_exporter;
mod prometheus_remote_write;
mod prometheus_scrape;
mod rule_unit_tests;
mod ruler_pair;
mod rules_end_to_end;
mod scrape_to_cloudwatch;
mod signal_routing;
mod xray;
mod xray_sampling;
