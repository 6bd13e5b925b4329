#![no_main]
//! X-Ray daemon datagrams (header line, then a segment or subsegment document) to spans. Must
//! never panic.

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sextant_pipeline::flow::event::Origin;
use sextant_pipeline::sources::xray_udp::parse::datagram;

fuzz_target!(|data: &[u8]| {
    let _ = datagram(data, &Arc::new(Origin::default()));
});
