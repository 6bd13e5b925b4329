#![no_main]
//! Exposition bodies (Prometheus text and OpenMetrics) through the scraper's series cache: two
//! scrapes of the same body and one of its first half, so new series, cache hits, staleness and
//! failed scrapes are all exercised. Must never panic.

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sextant_agent::exposition::Format;
use sextant_agent::sources::prometheus_scrape::series::{Dropped, SeriesSettings, TargetSeries};
use sextant_pipeline::flow::event::{Origin, Text};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else { return };
    let format = if flags & 1 == 0 { Format::Text } else { Format::OpenMetrics };
    let settings = SeriesSettings {
        honor_labels: flags & 2 != 0,
        honor_timestamps: flags & 4 != 0,
        sample_limit: if flags & 8 != 0 { 5 } else { 0 },
        label_limit: if flags & 16 != 0 { 3 } else { 0 },
        ..Default::default()
    };
    let target = vec![(Text::from("job"), Text::from("fuzz")), (Text::from("instance"), Text::from("x:1"))];
    let mut series = TargetSeries::new(settings, target);
    let origin = Arc::new(Origin::default());
    for (i, b) in [body, body, &body[..body.len() / 2]].into_iter().enumerate() {
        let now = 1_000 * (i as i64 + 1);
        let failed = series.ingest(b, format, now).is_err();
        let _ = series.emit(&origin, failed, now, &mut Dropped::default());
    }
});
